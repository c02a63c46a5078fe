//! vigil-report (being built).
