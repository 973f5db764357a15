//! What the trainer's tests read back from burn: a model's weights, a feed's batches.

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;

use balance_split::train::feed::Feed;

/// Every parameter's values in visiting order (records also carry parameter ids, which
/// differ between a fresh model and a restored one).
struct Values(Vec<Vec<f32>>);

impl ModuleVisitor for Values {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        self.0
            .push(p.val().into_data().try_to_vec::<f32>().unwrap());
    }
}

pub fn values<M: Module>(m: &M) -> Vec<Vec<f32>> {
    let mut v = Values(Vec::new());
    m.visit(&mut v);
    v.0
}

/// The first `limit` batches of `feed`'s epoch over `order`, read back: (images, labels).
pub fn batches(
    feed: &Feed,
    order: &[usize],
    epoch: u64,
    limit: usize,
) -> Vec<(Vec<f32>, Vec<u32>)> {
    feed.epoch(order.to_vec(), epoch)
        .take(limit)
        .map(|b| {
            let b = b.unwrap();
            (b.x0.into_data().try_to_vec::<f32>().unwrap(), b.labels)
        })
        .collect()
}
