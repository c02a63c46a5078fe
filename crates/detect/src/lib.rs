//! vigil-detect (being built).
