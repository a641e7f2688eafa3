//! ascent-store
