//! End-to-end harness: starts the real binaries as separate processes on port 0.
