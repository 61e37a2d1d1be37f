//! forcesync runtime. For now it holds `adapter`: the types generated sync adapters are built on.
