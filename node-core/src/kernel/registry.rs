//! The registry of named functions: spawn init functions and node requests.
//!
//! Perl resolves a function name like `MyApp::worker` by loading its
//! package. Rust cannot load code by name, so a node registers the functions
//! it offers under such names ([`Node::register`](super::Node::register)).
//! Remote nodes reach them through `spawn` (`AnyEvent::MP::_spawn`) and
//! `snd_to_func`; in secure mode remote calls are refused.

use std::rc::Rc;

use rustc_hash::FxHashMap;

use super::{CbResult, Node};
use crate::value::{Msg, Str};

/// A registered function: gets the node and the call's arguments.
pub type NodeFn = Rc<dyn Fn(&mut Node, Msg) -> CbResult>;

/// Named functions of one node.
#[derive(Default)]
pub(crate) struct Registry {
    funcs: FxHashMap<Str, NodeFn>,
}

impl Registry {
    pub fn insert(&mut self, name: &str, f: NodeFn) {
        self.funcs.insert(crate::value::str(name), f);
    }

    /// The function (cloned out, so the caller may use the node freely).
    pub fn get(&self, name: &str) -> Option<NodeFn> {
        self.funcs.get(name).cloned()
    }
}
