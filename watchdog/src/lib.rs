//! An of-watchdog-compatible function runtime that also honours the Knative runtime
//! contract.
