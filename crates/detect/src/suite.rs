//! Rule test suites (`vigil rules test`).
