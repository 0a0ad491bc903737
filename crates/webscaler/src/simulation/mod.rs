//! The scaling loop without a cloud, a balancer or a clock of its own: `webscaler simulate`
//! and the tests of the controller.
//!
//! - [`world`]: a simulated cloud, balancer and clock on one shared world, with faults to
//!   inject; nothing sleeps.
//! - [`trace`]: request-rate traces (`seconds,rate` CSV, staged load profiles, synthetic),
//!   the load the world's balancer counts.
//! - [`run`]: the controller of `webscaler run` over a trace on the world, scored.
//! - [`elasticity`]: the SPEC RG elasticity metrics it is scored with.

pub mod elasticity;
pub mod run;
pub mod trace;
pub mod world;
