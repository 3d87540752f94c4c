//! Data-parallel training: what [`Sequential`] does differently when it was given a
//! [`Communicator`] of more than one rank. `fit` calls these at fixed points, the same on
//! every rank, so that the collectives line up.

use std::sync::Arc;

use tensor::{Element, Tensor};

use crate::distributed::{Communicator, Fingerprint};
use crate::error::{Error, Result};
use crate::model::Sequential;

impl<T: Element> Sequential<T> {
    /// Trains data-parallel with the ranks of `comm`: each rank runs the same program on
    /// the same data, and from now on `fit` gives each rank its share of every global batch,
    /// sums the ranks' gradients (weighted by their rows, so an uneven last batch is right)
    /// and applies the same update everywhere. Losses, metrics and validation figures are
    /// the global ones; only rank 0 prints and runs the callbacks that write
    /// ([`Callback::chief_only`](crate::callbacks::Callback::chief_only)). Before training, the ranks
    /// check that they agree (architecture, optimizer, data, options) and rank 0's
    /// weights and optimizer state are broadcast. `train_on_batch`, `evaluate` and
    /// `test_on_batch` take the global batch or data set too, the same on every rank.
    ///
    /// The numbers are one process's, up to the order of the sums, for every layer whose
    /// training step treats rows independently, Dropout included (each rank drops for its
    /// rows what one process drops for them). BatchNormalization normalizes with each
    /// rank's own rows (as PyTorch's DDP without `SyncBatchNorm`; its moving statistics
    /// are averaged, so the ranks stay identical): such a model trains correctly, but not
    /// to one process's numbers.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use nn::{Dense, FitOptions, Sequential, distributed::{Communicator, thread_group}};
    /// use tensor::Tensor;
    /// let x = Tensor::new(&[[0.0f32, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]).unwrap();
    /// let y = Tensor::new(&[[0.0f32], [1.0], [1.0], [0.0]]).unwrap();
    /// let train = move |comm: Option<Arc<dyn Communicator>>| {
    ///     let mut m = Sequential::with_seed(1);
    ///     m.add(Dense::new(4).input_dim(2).activation("tanh")).unwrap();
    ///     m.add(Dense::new(1).activation("sigmoid")).unwrap();
    ///     m.compile("adam", "binary_crossentropy", []).unwrap();
    ///     if let Some(comm) = comm {
    ///         m.distribute(comm);
    ///     }
    ///     let opts = FitOptions { epochs: 3, batch_size: 4, verbose: 0, ..Default::default() };
    ///     let h = m.fit(&x, &y, opts).unwrap();
    ///     (h.get("loss").unwrap().to_vec(), m.get_weights())
    /// };
    /// // Two ranks as two threads (over MPI, `brick-mpi` gives one per process), each
    /// // training on two of each batch's four rows, end where one process ends.
    /// let ranks: Vec<_> = thread_group(2).unwrap().into_iter()
    ///     .map(|c| { let train = train.clone(); std::thread::spawn(move || train(Some(c))) })
    ///     .collect();
    /// let (loss, weights) = train(None);
    /// for r in ranks {
    ///     let (l, w) = r.join().unwrap();
    ///     assert!(l.iter().zip(&loss).all(|(a, b)| (a - b).abs() < 1e-6));
    ///     assert!(w.iter().zip(&weights).all(|(a, b)| a.allclose(b, 1e-5, 1e-6)));
    /// }
    /// ```
    pub fn distribute(&mut self, comm: Arc<dyn Communicator>) {
        self.communicator = Some(comm);
    }

    /// The communicator given to [`distribute`](Sequential::distribute), if any.
    pub fn communicator(&self) -> Option<&Arc<dyn Communicator>> {
        self.communicator.as_ref()
    }

    /// Whether this process is rank 0 (or training is not distributed): the one that
    /// prints and writes.
    pub fn is_chief(&self) -> bool {
        self.communicator.as_ref().is_none_or(|c| c.rank() == 0)
    }

    /// The communicator when there is more than one rank.
    pub(crate) fn group(&self) -> Option<Arc<dyn Communicator>> {
        self.communicator.clone().filter(|c| c.size() > 1)
    }

    /// A fingerprint of the architecture, the compiled loss, metrics and optimizer
    /// (settings and step count), for [`agree`](Sequential::agree).
    pub(crate) fn model_fingerprint(&self) -> (u64, u64) {
        let mut arch = Fingerprint::default().str(&format!("{:?}", self.input_shape));
        for l in &self.layers {
            arch = arch
                .str(l.class_name())
                .str(l.name().unwrap_or_default())
                .str(&format!("{:?}", l.config()));
            for w in l.weights().iter() {
                arch = arch
                    .str(w.name())
                    .str(&format!("{:?}{}", w.value().shape(), w.trainable()));
            }
        }
        let mut compiled = Fingerprint::default();
        if let Some(c) = &self.compiled {
            compiled = compiled
                .str(&format!("{:?}", c.loss))
                .str(&format!("{:?}", c.metrics))
                .str(c.optimizer.name())
                .str(&format!("{:?}", c.optimizer.hyperparameters()))
                .str(&format!("{:?}", c.optimizer.common()))
                .word(c.optimizer.state().len() as u64);
        }
        (arch.value(), compiled.value())
    }

    /// Checks that every rank has the same fingerprints, `(what, fingerprint)`; the error
    /// (on every rank) names what differs and which ranks differ from rank 0.
    pub(crate) fn agree(&self, op: &str, parts: &[(&str, u64)]) -> Result<()> {
        let Some(comm) = self.group() else {
            return Ok(());
        };
        let values: Vec<u64> = parts.iter().map(|p| p.1).collect();
        let all = comm.all_gather_u64(&values)?;
        let k = parts.len();
        for (i, (what, _)) in parts.iter().enumerate() {
            let differ: Vec<usize> = (1..comm.size())
                .filter(|r| all[r * k + i] != all[i])
                .collect();
            if !differ.is_empty() {
                return Err(Error::config(
                    op,
                    format!(
                        "the ranks disagree: {what} of rank(s) {differ:?} differ from rank 0's; \
                         every rank must run the same model on the same data with the same \
                         options"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Gives every rank rank 0's weights and optimizer state.
    pub(crate) fn broadcast_state(&mut self) -> Result<()> {
        let Some(comm) = self.group() else {
            return Ok(());
        };
        let mut tensors: Vec<&mut Tensor<T>> = self
            .layers
            .iter_mut()
            .flat_map(|l| l.weights_mut().iter_mut().map(|w| w.value_mut()))
            .collect();
        if let Some(c) = self.compiled.as_mut() {
            tensors.extend(c.optimizer.state_mut());
        }
        let flat = &mut self.reduce_buf;
        flat.pack(tensors.iter().map(|t| &**t), T::one());
        flat.broadcast(comm.as_ref(), 0)?;
        flat.unpack(tensors);
        Ok(())
    }

    /// Sums `share` times each rank's gradients and non-trainable updates over the ranks,
    /// in place: with each `share` its rank's fraction of the global batch, the mean over
    /// the global batch.
    pub(crate) fn reduce_gradients(
        &mut self,
        comm: &dyn Communicator,
        share: f64,
        grads: &mut [Tensor<T>],
        updates: &mut [(usize, &'static str, Tensor<T>)],
    ) -> Result<()> {
        let s = T::from_f64(share).expect("a share in [0, 1]");
        let flat = &mut self.reduce_buf;
        flat.pack(grads.iter().chain(updates.iter().map(|u| &u.2)), s);
        flat.all_sum(comm)?;
        flat.unpack(grads.iter_mut().chain(updates.iter_mut().map(|u| &mut u.2)));
        Ok(())
    }

    /// Checks that every rank's weights are still bit-identical (after an epoch): a
    /// transport whose sums differ by rank would otherwise let them drift apart unseen.
    pub(crate) fn check_in_step(&self, op: &str) -> Result<()> {
        if self.group().is_none() {
            return Ok(());
        }
        let mut fp = Fingerprint::default();
        for l in &self.layers {
            for w in l.weights().iter() {
                fp = fp.tensor(w.value());
            }
        }
        self.agree(op, &[("the weights", fp.value())])
    }
}
