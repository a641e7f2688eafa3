//! ascent-app
