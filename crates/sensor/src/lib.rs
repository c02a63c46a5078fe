//! vigil-sensor (being built).
