//! Checkpoint validation and scoring (see issue 4).
