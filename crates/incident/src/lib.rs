//! vigil-incident (being built).
