//! Host simulator: NOR flash with the fault model of design.md, update scenarios on the
//! Arduino layouts, power-cut sweeps and the corruption (reject) test.
pub mod flash;
pub mod gen;
pub mod rng;
pub mod rtc;
pub mod scenario;
pub mod reject;
pub mod sweep;
