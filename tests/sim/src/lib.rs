//! Host simulator: NOR flash with the fault model of design.md, scenarios, sweeps.
