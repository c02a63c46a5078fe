//! vigil-server (being built).
