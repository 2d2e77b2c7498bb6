//! End-to-end tests across controllers live in `tests/tests/`; they arrive with the pipeline issue.
