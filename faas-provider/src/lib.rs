//! faas-provider: the OpenFaaS provider API of Locus.
