//! vigil-respond (being built).
