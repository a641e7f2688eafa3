//! ascent-frontend
