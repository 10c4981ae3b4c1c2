//! The Gantry node agent: runs the containers the managers assign to this node.
//!
//! Not built yet: the session with the managers, the Docker and process drivers, health
//! checks and the reconcile loop arrive with the agent milestone. The crate exists so the
//! workspace has its final shape.
