//! vigil-app (being built).
