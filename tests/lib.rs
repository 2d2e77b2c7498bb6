//! End-to-end tests of weir, in `tests/tests/`: `e2e.rs` runs the three controllers as real
//! processes (through `weir_testenv::process`) against the real control plane and a real Git
//! server (smart HTTP), and checks what lands on the cluster: commit → applied, change → updated,
//! removal → pruned, broken commit → Ready=False with the previous objects untouched, revert,
//! suspend, Receiver webhooks, SIGKILL of each controller mid-reconcile, and artifact server
//! restarts. `install.rs` checks the install manifests. This library is empty on purpose.
