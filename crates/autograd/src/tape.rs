//! The define-by-run tape, the variables that live on it, and the two reverse sweeps: the
//! fast one over tensors ([`Var::backward`]) and the recorded one over variables
//! ([`Var::grad`]), whose gradients can be differentiated again.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::ops::Index;
use std::sync::atomic::{AtomicU64, Ordering};

use tensor::{Element, Result, Tensor, TensorError};

use crate::op::{InputGrads, Op};

static NEXT_TAPE_ID: AtomicU64 = AtomicU64::new(1);

/// An op as the tape stores it: its backward rule instantiated for both sweeps.
trait DynOp<T: Element>: Send {
    fn name(&self) -> &'static str;
    fn forward_dyn(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>>;
    fn backward_eager(
        &self,
        inputs: &[&Tensor<T>],
        output: &Tensor<T>,
        grad: &Tensor<T>,
        grads: &mut InputGrads<'_, Tensor<T>>,
    );
    fn backward_recorded<'t>(
        &self,
        inputs: &[&Var<'t, T>],
        output: &Var<'t, T>,
        grad: &Var<'t, T>,
        grads: &mut InputGrads<'_, Var<'t, T>>,
    );
}

impl<T: Element, O: Op<T>> DynOp<T> for O {
    fn name(&self) -> &'static str {
        Op::name(self)
    }
    fn forward_dyn(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>> {
        self.forward(inputs)
    }
    fn backward_eager(
        &self,
        inputs: &[&Tensor<T>],
        output: &Tensor<T>,
        grad: &Tensor<T>,
        grads: &mut InputGrads<'_, Tensor<T>>,
    ) {
        self.backward(inputs, output, grad, grads);
    }
    fn backward_recorded<'t>(
        &self,
        inputs: &[&Var<'t, T>],
        output: &Var<'t, T>,
        grad: &Var<'t, T>,
        grads: &mut InputGrads<'_, Var<'t, T>>,
    ) {
        self.backward(inputs, output, grad, grads);
    }
}

/// One recorded operation: the op (its attributes and its backward rule) and where its
/// input ids start in the tape's flat id list. The op is taken out while the recorded sweep
/// runs its rule (which records onto the same tape) and put back after.
struct Record<T: Element> {
    op: Option<Box<dyn DynOp<T>>>,
    inputs_start: usize,
    inputs_len: usize,
}

impl<T: Element> Record<T> {
    fn name(&self) -> &'static str {
        self.op.as_ref().map_or("(running)", |op| op.name())
    }
}

/// One value on the tape: a leaf (parameter or constant) or the output of a record.
struct Node<T: Element> {
    value: Tensor<T>,
    /// True for parameters and for every output computed from one while recording.
    requires_grad: bool,
    /// A constant computed from a gradient that was not recorded (`create_graph: false`):
    /// differentiating through it would silently give zero, so the sweeps refuse it.
    unrecorded_gradient: bool,
    /// The output's shape while its value is not computed yet (see
    /// [`Op::output_shape`]); `value` is then an empty placeholder.
    deferred: Option<Vec<usize>>,
    record: Option<Record<T>>,
}

impl<T: Element> Node<T> {
    fn shape(&self) -> &[usize] {
        self.deferred.as_deref().unwrap_or(self.value.shape())
    }
}

struct Inner<T: Element> {
    nodes: Vec<Node<T>>,
    input_ids: Vec<usize>,
}

/// A define-by-run tape: every operation on a [`Var`] runs at once and, if it depends on a
/// parameter, appends one record (its op, inputs and output) to the tape. [`Var::backward`]
/// then walks the records once, newest first, applying the chain rule; the tape is already
/// in topological order, so no graph search is needed.
///
/// A fresh tape per training step is the normal use: dropping it (or calling
/// [`reset`](Tape::reset)) frees everything it recorded.
///
/// ```
/// use autograd::Tape;
/// use tensor::Tensor;
///
/// let tape = Tape::new();
/// let w = tape.param(&Tensor::from_vec(vec![0.5f32, -1.0], &[2, 1]).unwrap());
/// let b = tape.param(&Tensor::from_vec(vec![0.1f32], &[1]).unwrap());
/// let x = tape.constant(&Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2]).unwrap());
/// let y = (x.matmul(w) + b).relu();
/// let loss = (y * y).mean_all();
/// let grads = loss.backward().unwrap();
/// assert_eq!(grads[w].shape(), &[2, 1]);
/// assert!(grads.get(x).is_none()); // constants get no gradient
/// ```
pub struct Tape<T: Element = f32> {
    id: u64,
    inner: RefCell<Inner<T>>,
    no_grad_depth: Cell<usize>,
    /// Whether ops that can (matrix products) are recorded without running yet.
    defer: Cell<bool>,
    /// How many values are not computed yet.
    deferred_count: Cell<usize>,
}

impl<T: Element> fmt::Debug for Tape<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner.borrow();
        f.debug_struct("Tape")
            .field("values", &inner.nodes.len())
            .field("ops", &self.op_names())
            .finish()
    }
}

impl<T: Element> Default for Tape<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// How [`Var::grad_with`] differentiates.
#[derive(Clone, Copy, Debug)]
pub struct GradOptions<'t, T: Element> {
    /// The gradient of the output to start from (a vector-Jacobian product): a variable of
    /// the output's shape, which may itself depend on parameters. `None` is 1 for a scalar
    /// output.
    pub seed: Option<Var<'t, T>>,
    /// Record the sweep on the tape (PyTorch's `create_graph`), so that the gradients can be
    /// differentiated again. Without it the gradients are constants, computed by the fast
    /// sweep; using one where a gradient should flow is an error, never a silent zero.
    pub create_graph: bool,
}

impl<T: Element> Default for GradOptions<'_, T> {
    /// No seed, `create_graph: true`.
    fn default() -> Self {
        GradOptions {
            seed: None,
            create_graph: true,
        }
    }
}

impl<T: Element> Tape<T> {
    /// An empty tape.
    pub fn new() -> Self {
        Tape {
            id: NEXT_TAPE_ID.fetch_add(1, Ordering::Relaxed),
            inner: RefCell::new(Inner {
                nodes: Vec::new(),
                input_ids: Vec::new(),
            }),
            no_grad_depth: Cell::new(0),
            defer: Cell::new(false),
            deferred_count: Cell::new(0),
        }
    }

    /// Puts a parameter on the tape: a leaf whose gradient `backward` computes. The tensor's
    /// storage is shared, not copied. Inputs to differentiate with respect to (the `x` of a
    /// physics residual `u''(x)`) are parameters too.
    pub fn param(&self, value: &Tensor<T>) -> Var<'_, T> {
        self.leaf(value.clone(), true, false)
    }

    /// Puts several parameters on the tape at once, in the form they are kept in: an array
    /// of tensors gives an array of variables in the same order.
    /// [`Gradients::take_all`] takes their gradients back in the same form.
    ///
    /// ```
    /// use autograd::Tape;
    /// use tensor::Tensor;
    /// let (w, b) = (Tensor::new([[2.0f32], [3.0]]).unwrap(), Tensor::new([1.0f32]).unwrap());
    /// let tape = Tape::new();
    /// let [wv, bv] = tape.params([&w, &b]);
    /// let x = tape.constant(&Tensor::new([[1.0f32, 1.0]]).unwrap());
    /// let loss = (x.matmul(wv) + bv).sum_all();
    /// let [gw, gb] = loss.backward().unwrap().take_all([wv, bv]).unwrap();
    /// assert_eq!((gw.to_vec(), gb.to_vec()), (vec![1.0, 1.0], vec![1.0]));
    /// ```
    pub fn params<const N: usize>(&self, values: [&Tensor<T>; N]) -> [Var<'_, T>; N] {
        values.map(|v| self.param(v))
    }

    /// Puts named parameters on the tape: a map of name to tensor (the one list a
    /// hand-written loop keeps) gives a map of name to variable, `vars["w1"]`.
    /// [`Gradients::take_named`] takes their gradients back as a map by the same names, and
    /// an optimizer's `step_map` applies them to the weights by name.
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use autograd::Tape;
    /// use tensor::Tensor;
    /// let weights = BTreeMap::from([
    ///     ("kernel".to_string(), Tensor::new([[2.0f32], [3.0]]).unwrap()),
    ///     ("bias".to_string(), Tensor::new([1.0f32]).unwrap()),
    /// ]);
    /// let tape = Tape::new();
    /// let vars = tape.params_named(&weights);
    /// let x = tape.constant(&Tensor::new([[1.0f32, 2.0]]).unwrap());
    /// let loss = (x.matmul(vars["kernel"]) + vars["bias"]).sum_all();
    /// let grads = loss.backward().unwrap().take_named(&vars).unwrap();
    /// assert_eq!(grads["kernel"].to_vec(), vec![1.0, 2.0]);
    /// ```
    pub fn params_named(
        &self,
        weights: &std::collections::BTreeMap<String, Tensor<T>>,
    ) -> std::collections::BTreeMap<String, Var<'_, T>> {
        weights
            .iter()
            .map(|(name, w)| (name.clone(), self.param(w)))
            .collect()
    }

    /// Puts a constant on the tape (data, labels, masks): a leaf that gets no gradient and
    /// costs no gradient work.
    pub fn constant(&self, value: &Tensor<T>) -> Var<'_, T> {
        self.leaf(value.clone(), false, false)
    }

    /// A constant scalar.
    pub fn scalar(&self, value: T) -> Var<'_, T> {
        self.leaf(Tensor::scalar(value), false, false)
    }

    fn leaf(&self, value: Tensor<T>, requires_grad: bool, unrecorded: bool) -> Var<'_, T> {
        let mut inner = self.inner.borrow_mut();
        inner.nodes.push(Node {
            value,
            requires_grad,
            unrecorded_gradient: unrecorded,
            deferred: None,
            record: None,
        });
        Var {
            tape: self,
            id: inner.nodes.len() - 1,
        }
    }

    /// Runs `op` on `inputs` now, and records it if any input depends on a parameter (and
    /// no [`no_grad`](Tape::no_grad) scope is open). This is how every op method of [`Var`]
    /// is built, and how users add their own ops.
    ///
    /// # Errors
    /// What the op's `forward` returns (shape errors), or an error if an input belongs to
    /// another tape.
    pub fn apply<'t, O: Op<T>, const N: usize>(
        &'t self,
        op: O,
        inputs: [Var<'t, T>; N],
    ) -> Result<Var<'t, T>> {
        self.check_inputs(op.name(), &inputs)?;
        if let Some(shape) = self.prepare(&op, &inputs) {
            return Ok(self.push(op, &inputs, Tensor::zeros(&[0]), Some(shape)));
        }
        let value = {
            let inner = self.inner.borrow();
            let values: [&Tensor<T>; N] = inputs.map(|v| &inner.nodes[v.id].value);
            op.forward(&values)?
        };
        Ok(self.push(op, &inputs, value, None))
    }

    /// [`apply`](Tape::apply) for ops with any number of inputs (`concat`, `stack`).
    pub fn apply_slice<'t, O: Op<T>>(&'t self, op: O, inputs: &[Var<'t, T>]) -> Result<Var<'t, T>> {
        self.check_inputs(op.name(), inputs)?;
        if let Some(shape) = self.prepare(&op, inputs) {
            return Ok(self.push(op, inputs, Tensor::zeros(&[0]), Some(shape)));
        }
        let value = {
            let inner = self.inner.borrow();
            let values: Vec<&Tensor<T>> = inputs.iter().map(|v| &inner.nodes[v.id].value).collect();
            op.forward(&values)?
        };
        Ok(self.push(op, inputs, value, None))
    }

    /// Computes the inputs' values that are not computed yet, and returns the output shape
    /// if this op is to be recorded without running (deferring is on, the op can be
    /// deferred, and it will be recorded).
    fn prepare<O: Op<T>>(&self, op: &O, inputs: &[Var<'_, T>]) -> Option<Vec<usize>> {
        if self.deferred_count.get() > 0 {
            for v in inputs {
                self.force(v.id);
            }
        }
        if !self.defer.get() || self.no_grad_depth.get() > 0 {
            return None;
        }
        let inner = self.inner.borrow();
        if !inputs.iter().any(|v| inner.nodes[v.id].requires_grad) {
            return None;
        }
        let shapes: Vec<&[usize]> = inputs.iter().map(|v| inner.nodes[v.id].shape()).collect();
        op.output_shape(&shapes)
    }

    /// Computes a deferred value. Its inputs are computed already: `prepare` computed them
    /// before the op was recorded.
    fn force(&self, id: usize) {
        let value = {
            let inner = self.inner.borrow();
            let node = &inner.nodes[id];
            if node.deferred.is_none() {
                return;
            }
            let r = node.record.as_ref().expect("a deferred value has a record");
            let ids = &inner.input_ids[r.inputs_start..r.inputs_start + r.inputs_len];
            let values: Vec<&Tensor<T>> = ids.iter().map(|&j| &inner.nodes[j].value).collect();
            debug_assert!(ids.iter().all(|&j| inner.nodes[j].deferred.is_none()));
            r.op.as_ref()
                .expect("a deferred op is in its record")
                .forward_dyn(&values)
                .expect("a deferred op's shapes were checked when it was recorded")
        };
        let mut inner = self.inner.borrow_mut();
        inner.nodes[id].value = value;
        inner.nodes[id].deferred = None;
        self.deferred_count.set(self.deferred_count.get() - 1);
    }

    /// How many values are recorded but not computed yet.
    #[cfg(test)]
    pub(crate) fn pending(&self) -> usize {
        self.deferred_count.get()
    }

    /// Runs `f` with matrix products recorded but not run until their values are read.
    fn deferring<R>(&self, f: impl FnOnce() -> R) -> R {
        struct Restore<'a>(&'a Cell<bool>, bool);
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                self.0.set(self.1);
            }
        }
        let _restore = Restore(&self.defer, self.defer.replace(true));
        f()
    }

    fn check_inputs(&self, op: &'static str, inputs: &[Var<'_, T>]) -> Result<()> {
        if inputs.iter().all(|v| std::ptr::eq(v.tape, self)) {
            Ok(())
        } else {
            Err(TensorError::InvalidArgument {
                op,
                message: "the operands are variables of different tapes".into(),
            })
        }
    }

    fn push<O: Op<T>>(
        &self,
        op: O,
        inputs: &[Var<'_, T>],
        value: Tensor<T>,
        deferred: Option<Vec<usize>>,
    ) -> Var<'_, T> {
        if deferred.is_some() {
            self.deferred_count.set(self.deferred_count.get() + 1);
        }
        let mut inner = self.inner.borrow_mut();
        let track =
            self.no_grad_depth.get() == 0 && inputs.iter().any(|v| inner.nodes[v.id].requires_grad);
        let record = if track {
            let inputs_start = inner.input_ids.len();
            inner.input_ids.extend(inputs.iter().map(|v| v.id));
            Some(Record {
                op: Some(Box::new(op)),
                inputs_start,
                inputs_len: inputs.len(),
            })
        } else {
            None
        };
        // Inside no_grad, a value is a constant on purpose (an update `w - lr * g`), as after
        // detach().
        let unrecorded_gradient = !track
            && self.no_grad_depth.get() == 0
            && inputs.iter().any(|v| inner.nodes[v.id].unrecorded_gradient);
        inner.nodes.push(Node {
            value,
            requires_grad: track,
            unrecorded_gradient,
            deferred,
            record,
        });
        Var {
            tape: self,
            id: inner.nodes.len() - 1,
        }
    }

    /// Runs `f` without recording: every value computed inside is a constant. Use it for
    /// evaluation and for updates that must not be differentiated.
    ///
    /// ```
    /// use autograd::Tape;
    /// use tensor::Tensor;
    /// let tape = Tape::<f32>::new();
    /// let w = tape.param(&Tensor::ones(&[2]));
    /// let y = tape.no_grad(|| w * 2.0);
    /// assert!(!y.requires_grad());
    /// assert_eq!(tape.len(), 0); // nothing recorded
    /// ```
    pub fn no_grad<R>(&self, f: impl FnOnce() -> R) -> R {
        struct Restore<'a>(&'a Cell<usize>);
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                self.0.set(self.0.get() - 1);
            }
        }
        self.no_grad_depth.set(self.no_grad_depth.get() + 1);
        let _restore = Restore(&self.no_grad_depth);
        f()
    }

    /// The number of recorded operations.
    pub fn len(&self) -> usize {
        self.inner
            .borrow()
            .nodes
            .iter()
            .filter(|n| n.record.is_some())
            .count()
    }

    /// Whether nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The names of the recorded operations, oldest first.
    pub fn op_names(&self) -> Vec<&'static str> {
        self.inner
            .borrow()
            .nodes
            .iter()
            .filter_map(|n| n.record.as_ref().map(Record::name))
            .collect()
    }

    /// Forgets every value and record, keeping the allocated capacity for the next step.
    /// Needs `&mut self`, so no variable of the old step can still be in use.
    pub fn reset(&mut self) {
        let inner = self.inner.get_mut();
        inner.nodes.clear();
        inner.input_ids.clear();
        self.deferred_count.set(0);
        self.id = NEXT_TAPE_ID.fetch_add(1, Ordering::Relaxed);
    }

    /// The error for a value computed from an unrecorded gradient: input `k` of the record
    /// `op`, or (`None`) the differentiated value itself. `caller` names the call.
    fn unrecorded_error(caller: &'static str, input: Option<(&'static str, usize)>) -> TensorError {
        let what = match input {
            Some((op, k)) => format!("input {k} of `{op}`"),
            None => "the differentiated value".to_string(),
        };
        TensorError::InvalidArgument {
            op: caller,
            message: format!(
                "{what} was computed from a gradient taken without recording \
                 (create_graph: false), so no gradient can flow through it and its \
                 contribution would silently be zero; take that gradient with Var::grad \
                 (create_graph: true), or detach() it if it is meant as a constant"
            ),
        }
    }

    /// The fast reverse sweep from the roots `seeds` (node id and gradient), over tensors,
    /// recording nothing. Keeps the gradients of parameters (`keep: None`) or of the listed
    /// nodes.
    fn backward_eager(
        &self,
        caller: &'static str,
        seeds: Vec<(usize, Tensor<T>)>,
        keep: Option<&[usize]>,
    ) -> Result<Vec<Option<Tensor<T>>>> {
        let n = seeds.iter().map(|s| s.0 + 1).max().unwrap_or(0);
        // No record has a deferred input: `prepare` computed every input before the record
        // was made. A deferred node's own rule does not read its output.
        let inner = self.inner.borrow();
        let mut grads: Vec<Option<Tensor<T>>> = (0..n).map(|_| None).collect();
        for (id, seed) in seeds {
            if inner.nodes[id].unrecorded_gradient && !inner.nodes[id].requires_grad {
                return Err(Self::unrecorded_error(caller, None));
            }
            match &mut grads[id] {
                Some(acc) => *acc += &seed,
                slot @ None => *slot = Some(seed),
            }
        }
        // The gradients of listed non-leaf nodes, copied out before their records consume them.
        let mut kept_inner: Vec<(usize, Tensor<T>)> = Vec::new();
        // Buffers reused across records, so the sweep allocates only the gradients.
        let mut input_values: Vec<&Tensor<T>> = Vec::new();
        let mut wants: Vec<bool> = Vec::new();
        let mut slots: Vec<Option<Tensor<T>>> = Vec::new();
        for i in (0..n).rev() {
            let node = &inner.nodes[i];
            let Some(record) = &node.record else { continue };
            let Some(grad) = grads[i].take() else {
                continue;
            };
            if keep.is_some_and(|k| k.contains(&i)) {
                kept_inner.push((i, grad.clone()));
            }
            let ids =
                &inner.input_ids[record.inputs_start..record.inputs_start + record.inputs_len];
            input_values.clear();
            input_values.extend(ids.iter().map(|&j| &inner.nodes[j].value));
            wants.clear();
            for (k, &j) in ids.iter().enumerate() {
                let input = &inner.nodes[j];
                if input.unrecorded_gradient && !input.requires_grad {
                    return Err(Self::unrecorded_error(caller, Some((record.name(), k))));
                }
                wants.push(input.requires_grad);
            }
            slots.clear();
            slots.resize_with(ids.len(), || None);
            let op = record.op.as_ref().expect("no recorded sweep is running");
            op.backward_eager(
                &input_values,
                &node.value,
                &grad,
                &mut InputGrads {
                    wants: &wants,
                    slots: &mut slots,
                },
            );
            for (k, &j) in ids.iter().enumerate() {
                let Some(g) = slots[k].take() else { continue };
                let expected = inner.nodes[j].value.shape();
                assert_eq!(
                    g.shape(),
                    expected,
                    "autograd: the backward of `{}` gave input {k} a gradient of shape {:?}, \
                     but the input has shape {:?} (a bug in that op)",
                    record.name(),
                    g.shape(),
                    expected
                );
                match &mut grads[j] {
                    Some(acc) => *acc += &g,
                    slot @ None => *slot = Some(g),
                }
            }
        }
        for (i, g) in kept_inner {
            grads[i] = Some(g);
        }
        match keep {
            // Parameters only; a parameter the roots do not depend on gets zeros, like JAX
            // (rather than a missing entry).
            None => {
                for (i, node) in inner.nodes[..n].iter().enumerate() {
                    let is_param = node.record.is_none() && node.requires_grad;
                    if !is_param {
                        grads[i] = None;
                    } else if grads[i].is_none() {
                        grads[i] = Some(node.value.zeros_like());
                    }
                }
            }
            Some(keep) => {
                for (i, g) in grads.iter_mut().enumerate() {
                    if !keep.contains(&i) {
                        *g = None;
                    }
                }
            }
        }
        Ok(grads)
    }

    /// The recorded reverse sweep from the roots `seeds`: every step of every backward rule
    /// is an op on this tape, so the gradients it returns (of the `wrt` nodes) can be
    /// differentiated again. Only records on a path from a `wrt` node to a root are visited.
    fn backward_recorded<'t>(
        &'t self,
        seeds: &[(usize, Var<'t, T>)],
        wrt: &[usize],
    ) -> Result<Vec<Var<'t, T>>> {
        let n = seeds.iter().map(|s| s.0 + 1).max().unwrap_or(0);
        // Which nodes depend on a `wrt` node: only they need gradients.
        let mut depends = vec![false; n];
        {
            let inner = self.inner.borrow();
            for &w in wrt {
                if w < n {
                    depends[w] = true;
                }
            }
            for i in 0..n {
                if let Some(r) = &inner.nodes[i].record {
                    let ids = &inner.input_ids[r.inputs_start..r.inputs_start + r.inputs_len];
                    depends[i] |= ids.iter().any(|&j| depends[j]);
                }
            }
            for &(id, _) in seeds {
                if inner.nodes[id].unrecorded_gradient && !inner.nodes[id].requires_grad {
                    return Err(Self::unrecorded_error("grad", None));
                }
            }
        }
        let mut grads: Vec<Option<Var<'t, T>>> = vec![None; n];
        for &(id, seed) in seeds {
            grads[id] = Some(match grads[id] {
                Some(acc) => acc + seed,
                None => seed,
            });
        }
        let mut ids: Vec<usize> = Vec::new();
        let mut wants: Vec<bool> = Vec::new();
        for i in (0..n).rev() {
            if !depends[i] {
                continue;
            }
            let Some(grad) = grads[i] else { continue };
            // Take the op out of its record: its rule records onto this tape meanwhile.
            let (op, name) = {
                let mut inner = self.inner.borrow_mut();
                let Some(record) = inner.nodes[i].record.as_ref() else {
                    continue;
                };
                let name = record.name();
                ids.clear();
                ids.extend_from_slice(
                    &inner.input_ids[record.inputs_start..record.inputs_start + record.inputs_len],
                );
                wants.clear();
                for (k, &j) in ids.iter().enumerate() {
                    let input = &inner.nodes[j];
                    if input.unrecorded_gradient && !input.requires_grad {
                        return Err(Self::unrecorded_error("grad", Some((name, k))));
                    }
                    wants.push(input.requires_grad && depends[j]);
                }
                let record = inner.nodes[i].record.as_mut().expect("checked above");
                (
                    record.op.take().expect("each record runs once per sweep"),
                    name,
                )
            };
            /// Puts the op back into its record, also if its rule panics.
            struct PutBack<'a, T: Element> {
                tape: &'a Tape<T>,
                id: usize,
                op: Option<Box<dyn DynOp<T>>>,
            }
            impl<T: Element> Drop for PutBack<'_, T> {
                fn drop(&mut self) {
                    if let Ok(mut inner) = self.tape.inner.try_borrow_mut()
                        && let Some(r) = inner.nodes[self.id].record.as_mut()
                    {
                        r.op = self.op.take();
                    }
                }
            }
            let guard = PutBack {
                tape: self,
                id: i,
                op: Some(op),
            };
            let inputs: Vec<Var<'t, T>> = ids.iter().map(|&id| Var { tape: self, id }).collect();
            let input_refs: Vec<&Var<'t, T>> = inputs.iter().collect();
            let mut slots: Vec<Option<Var<'t, T>>> = vec![None; ids.len()];
            guard.op.as_ref().expect("held").backward_recorded(
                &input_refs,
                &Var { tape: self, id: i },
                &grad,
                &mut InputGrads {
                    wants: &wants,
                    slots: &mut slots,
                },
            );
            drop(guard);
            for (k, &j) in ids.iter().enumerate() {
                let Some(g) = slots[k] else { continue };
                let (got, expected) = {
                    let inner = self.inner.borrow();
                    (
                        inner.nodes[g.id].shape().to_vec(),
                        inner.nodes[j].shape().to_vec(),
                    )
                };
                assert_eq!(
                    got, expected,
                    "autograd: the recorded backward of `{name}` gave input {k} a gradient of \
                     shape {got:?}, but the input has shape {expected:?} (a bug in that op)"
                );
                grads[j] = Some(match grads[j] {
                    Some(acc) => acc + g,
                    None => g,
                });
            }
        }
        Ok(wrt
            .iter()
            .map(|&w| match grads.get(w).copied().flatten() {
                Some(g) => g,
                None => {
                    let zeros = Tensor::zeros(self.inner.borrow().nodes[w].shape());
                    self.constant(&zeros)
                }
            })
            .collect())
    }

    /// Gradients of the roots (`(output, seed)` pairs: the sum of each output times its seed)
    /// with respect to `wrt`, recorded or not. The general form behind [`Var::grad`]; the
    /// Hessian-vector product uses it to start a sweep from every gradient at once.
    ///
    /// # Errors
    /// As [`Var::grad_with`].
    pub fn grad_of<'t>(
        &'t self,
        roots: &[(Var<'t, T>, Var<'t, T>)],
        wrt: &[Var<'t, T>],
        create_graph: bool,
    ) -> Result<Vec<Var<'t, T>>> {
        let foreign = |v: &Var<'t, T>| !std::ptr::eq(v.tape, self);
        if let Some(k) = wrt.iter().position(foreign) {
            return Err(grad_error(format!(
                "wrt[{k}] is a variable of another tape than the differentiated value"
            )));
        }
        if roots.iter().any(|(o, s)| foreign(o) || foreign(s)) {
            return Err(grad_error(
                "the differentiated value and its seed must be variables of one tape".into(),
            ));
        }
        for (output, seed) in roots {
            let (o, s) = (output.shape(), seed.shape());
            if o != s {
                return Err(grad_error(format!(
                    "the seed gradient must have the output's shape {o:?}, got {s:?}"
                )));
            }
        }
        {
            let inner = self.inner.borrow();
            for (k, w) in wrt.iter().enumerate() {
                let node = &inner.nodes[w.id];
                if !node.requires_grad {
                    let what = if node.unrecorded_gradient {
                        "a gradient taken without recording (create_graph: false)"
                    } else {
                        "a constant"
                    };
                    return Err(grad_error(format!(
                        "wrt[{k}] is {what}: gradients exist only with respect to parameters \
                         (Tape::param) and values computed from them"
                    )));
                }
            }
        }
        let ids: Vec<usize> = wrt.iter().map(|v| v.id).collect();
        if create_graph {
            let seeds: Vec<(usize, Var<'t, T>)> = roots.iter().map(|(o, s)| (o.id, *s)).collect();
            self.backward_recorded(&seeds, &ids)
        } else {
            let seeds = roots.iter().map(|(o, s)| (o.id, s.value())).collect();
            let grads = self.backward_eager("grad", seeds, Some(&ids))?;
            Ok(wrt
                .iter()
                .map(|w| {
                    let g = match grads.get(w.id).and_then(Option::as_ref) {
                        Some(g) => g.clone(),
                        None => w.value().zeros_like(),
                    };
                    self.leaf(g, false, true)
                })
                .collect())
        }
    }
}

impl<T: Element> Tape<T> {
    /// The recorded gradients of `output` with respect to `wrt`, with the matrix products
    /// of the sweep deferred until read: for the Hessian-vector product, which reads the
    /// values of those gradients never.
    pub(crate) fn grad_graph<'t>(
        &'t self,
        output: Var<'t, T>,
        wrt: &[Var<'t, T>],
    ) -> Result<Vec<Var<'t, T>>> {
        self.deferring(|| output.grad(wrt))
    }

    /// Vector-Jacobian products by the fast sweep, as tensors: the gradient of the sum of
    /// each root times its seed, with respect to each `wrt` variable (zeros where the roots
    /// do not depend on it).
    pub(crate) fn vjp_values(
        &self,
        seeds: Vec<(Var<'_, T>, Tensor<T>)>,
        wrt: &[Var<'_, T>],
    ) -> Result<Vec<Tensor<T>>> {
        let ids: Vec<usize> = wrt.iter().map(|v| v.id).collect();
        let seeds = seeds.into_iter().map(|(v, s)| (v.id, s)).collect();
        let mut grads = self.backward_eager("grad", seeds, Some(&ids))?;
        Ok(wrt
            .iter()
            .map(|w| match grads.get_mut(w.id).and_then(Option::take) {
                Some(g) => g,
                None => w.value().zeros_like(),
            })
            .collect())
    }
}

fn grad_error(message: String) -> TensorError {
    TensorError::InvalidArgument {
        op: "grad",
        message,
    }
}

/// A handle to a value on a [`Tape`]: cheap to copy, and arithmetic on it reads like the
/// maths (`(x.matmul(w) + b).relu()`), recording each step on the tape.
///
/// Operators and plain methods panic on shapes that do not fit (with the op and shapes in
/// the message); every method has a `try_` twin that returns the error instead.
#[derive(Clone, Copy)]
pub struct Var<'t, T: Element = f32> {
    pub(crate) tape: &'t Tape<T>,
    pub(crate) id: usize,
}

impl<'t, T: Element> Var<'t, T> {
    /// The tape this variable lives on.
    pub fn tape(&self) -> &'t Tape<T> {
        self.tape
    }

    /// The variable's value (shares storage; no copy).
    pub fn value(&self) -> Tensor<T> {
        self.tape.force(self.id);
        self.tape.inner.borrow().nodes[self.id].value.clone()
    }

    /// The value's shape.
    pub fn shape(&self) -> Vec<usize> {
        self.tape.inner.borrow().nodes[self.id].shape().to_vec()
    }

    /// The value of a one-element variable, such as a loss.
    ///
    /// # Panics
    /// If the variable holds more than one element.
    pub fn item(&self) -> T {
        self.tape.force(self.id);
        self.tape.inner.borrow().nodes[self.id].value.item()
    }

    /// Whether gradients flow through this variable (it is a parameter or was computed from one).
    pub fn requires_grad(&self) -> bool {
        self.tape.inner.borrow().nodes[self.id].requires_grad
    }

    /// The same value as a constant: gradients stop here. A gradient taken without recording
    /// may be used as a constant once detached (an adversarial step `x + eps * sign(g)`).
    pub fn detach(self) -> Var<'t, T> {
        self.tape.constant(&self.value())
    }

    /// Computes the gradient of this scalar with respect to every parameter it depends on,
    /// in one reverse sweep over the tape. Nothing is recorded: the gradients are tensors.
    /// For gradients that can be differentiated again, use [`grad`](Var::grad).
    ///
    /// # Errors
    /// If the variable is not a scalar (one element): a silent sum would hide a bug, so pass
    /// the output's gradient explicitly with [`backward_with`](Var::backward_with). If a
    /// value on the way was computed from a gradient taken without recording.
    pub fn backward(self) -> Result<Gradients<T>> {
        let shape = self.shape();
        if tensor::numel(&shape) != 1 {
            return Err(TensorError::InvalidArgument {
                op: "backward",
                message: format!(
                    "needs a scalar (one element) to differentiate, got shape {shape:?}; \
                     reduce it first (sum_all, mean_all) or pass a seed gradient to backward_with"
                ),
            });
        }
        let seed = Tensor::ones(&shape);
        let grads = self
            .tape
            .backward_eager("backward", vec![(self.id, seed)], None)?;
        Ok(Gradients {
            tape_id: self.tape.id,
            grads,
        })
    }

    /// Computes vector-Jacobian products: the gradient of `sum(self * seed)` with respect to
    /// every parameter. `seed` must have this variable's shape.
    pub fn backward_with(self, seed: &Tensor<T>) -> Result<Gradients<T>> {
        let shape = self.shape();
        if seed.shape() != shape.as_slice() {
            return Err(TensorError::InvalidArgument {
                op: "backward_with",
                message: format!(
                    "the seed gradient must have the output's shape {shape:?}, got {:?}",
                    seed.shape()
                ),
            });
        }
        let grads =
            self.tape
                .backward_eager("backward_with", vec![(self.id, seed.clone())], None)?;
        Ok(Gradients {
            tape_id: self.tape.id,
            grads,
        })
    }

    /// The gradients of this scalar with respect to `wrt` (parameters, inputs made with
    /// [`Tape::param`], or values computed from them), as variables recorded on the tape
    /// (PyTorch's `create_graph=True`): they can enter a loss and be differentiated again,
    /// to any order. A variable this one does not depend on gets zeros.
    ///
    /// ```
    /// use autograd::Tape;
    /// use tensor::Tensor;
    ///
    /// // f(x) = x^3: f' = 3x^2, f'' = 6x, f''' = 6.
    /// let tape = Tape::<f64>::new();
    /// let x = tape.param(&Tensor::scalar(2.0));
    /// let f = x * x * x;
    /// let d1 = f.grad(&[x]).unwrap()[0];
    /// let d2 = d1.grad(&[x]).unwrap()[0];
    /// let d3 = d2.grad(&[x]).unwrap()[0];
    /// assert_eq!((d1.item(), d2.item(), d3.item()), (12.0, 12.0, 6.0));
    /// ```
    ///
    /// # Errors
    /// As [`grad_with`](Var::grad_with).
    pub fn grad(self, wrt: &[Var<'t, T>]) -> Result<Vec<Var<'t, T>>> {
        self.grad_with(wrt, GradOptions::default())
    }

    /// [`grad`](Var::grad) with a seed (a vector-Jacobian product of a non-scalar output) or
    /// without recording.
    ///
    /// # Errors
    /// If this variable is not a scalar and no seed is given, if the seed's shape is not this
    /// variable's, if a variable belongs to another tape, if a `wrt` variable is a constant,
    /// or if a value on the way was computed from a gradient taken without recording: each
    /// error says which.
    pub fn grad_with(
        self,
        wrt: &[Var<'t, T>],
        options: GradOptions<'t, T>,
    ) -> Result<Vec<Var<'t, T>>> {
        let seed = match options.seed {
            Some(s) => s,
            None => {
                let shape = self.shape();
                if tensor::numel(&shape) != 1 {
                    return Err(grad_error(format!(
                        "needs a scalar (one element) to differentiate, got shape {shape:?}; \
                         reduce it first (sum_all, mean_all) or pass a seed"
                    )));
                }
                self.tape.constant(&Tensor::ones(&shape))
            }
        };
        self.tape
            .grad_of(&[(self, seed)], wrt, options.create_graph)
    }
}

impl<T: Element> fmt::Debug for Var<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.tape.force(self.id);
        let inner = self.tape.inner.borrow();
        let node = &inner.nodes[self.id];
        let kind = match &node.record {
            Some(r) => r.name(),
            None if node.requires_grad => "param",
            None => "constant",
        };
        write!(f, "Var#{} ({kind}) {:?}", self.id, node.value)
    }
}

/// The gradients one [`Var::backward`] computed, one per parameter the tape holds. Read
/// them with [`get`](Gradients::get) or by indexing with the parameter's variable.
#[derive(Debug)]
pub struct Gradients<T: Element = f32> {
    tape_id: u64,
    grads: Vec<Option<Tensor<T>>>,
}

impl<T: Element> Gradients<T> {
    /// The gradient of a parameter, or `None` for constants and computed values.
    ///
    /// # Panics
    /// If `var` belongs to another tape (or to this tape before a `reset`).
    pub fn get(&self, var: Var<'_, T>) -> Option<&Tensor<T>> {
        assert_eq!(
            var.tape.id, self.tape_id,
            "autograd: these gradients were computed on another tape than this variable's"
        );
        self.grads.get(var.id).and_then(Option::as_ref)
    }

    /// Moves a parameter's gradient out, leaving `None` in its place.
    pub fn take(&mut self, var: Var<'_, T>) -> Option<Tensor<T>> {
        assert_eq!(
            var.tape.id, self.tape_id,
            "autograd: these gradients were computed on another tape than this variable's"
        );
        self.grads.get_mut(var.id).and_then(Option::take)
    }

    /// Moves the gradients of several parameters out, in the form they were put on the
    /// tape ([`Tape::params`]): an array of variables gives an array of gradients.
    ///
    /// # Errors
    /// If one has no gradient (a constant, or a parameter recorded after the value that
    /// was differentiated); the message gives its position. Nothing is taken then.
    ///
    /// # Panics
    /// If a variable belongs to another tape (see [`get`](Gradients::get)).
    pub fn take_all<const N: usize>(&mut self, vars: [Var<'_, T>; N]) -> Result<[Tensor<T>; N]> {
        // Read first (a clone shares the storage), then clear: a variable given twice gets
        // its gradient twice, and on an error nothing is taken.
        let grads = vars.map(|v| self.get(v).cloned());
        if let Some(i) = grads.iter().position(Option::is_none) {
            return Err(no_gradient(format!("parameter {i} (Var#{})", vars[i].id)));
        }
        for v in vars {
            self.take(v);
        }
        Ok(grads.map(|g| g.expect("checked above")))
    }

    /// Moves the gradients of named parameters out ([`Tape::params_named`]), as a map by
    /// the same names.
    ///
    /// # Errors
    /// If one has no gradient; the message names it. Nothing is taken then.
    ///
    /// # Panics
    /// If a variable belongs to another tape (see [`get`](Gradients::get)).
    pub fn take_named(
        &mut self,
        vars: &std::collections::BTreeMap<String, Var<'_, T>>,
    ) -> Result<std::collections::BTreeMap<String, Tensor<T>>> {
        let mut grads = std::collections::BTreeMap::new();
        for (name, &v) in vars {
            let g = self.get(v).cloned();
            grads.insert(
                name.clone(),
                g.ok_or_else(|| no_gradient(format!("the parameter '{name}'")))?,
            );
        }
        for &v in vars.values() {
            self.take(v);
        }
        Ok(grads)
    }
}

/// The error of taking a gradient that was not computed.
fn no_gradient(what: String) -> TensorError {
    TensorError::InvalidArgument {
        op: "gradients",
        message: format!(
            "{what} has no gradient: only parameters (Tape::param) recorded before the \
             differentiated value have one, and each is taken once"
        ),
    }
}

impl<T: Element> Index<Var<'_, T>> for Gradients<T> {
    type Output = Tensor<T>;

    /// The gradient of a parameter.
    ///
    /// # Panics
    /// If `var` is not a parameter of this tape (see [`Gradients::get`]).
    fn index(&self, var: Var<'_, T>) -> &Tensor<T> {
        self.get(var).unwrap_or_else(|| {
            panic!(
                "autograd: no gradient for Var#{}: only parameters (Tape::param) recorded \
                 before the differentiated value have one",
                var.id
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f64], s: &[usize]) -> Tensor<f64> {
        Tensor::from_shape_slice(v, s).unwrap()
    }

    #[test]
    fn gradients_of_a_set_of_parameters_come_back_in_its_form_or_not_at_all() {
        let (a, b, unused) = (t(&[2.0], &[1]), t(&[3.0], &[1]), t(&[1.0], &[1]));
        let weights = std::collections::BTreeMap::from([
            ("a".to_string(), a.clone()),
            ("b".to_string(), b.clone()),
        ]);
        let tape = Tape::new();
        let [av, bv] = tape.params([&a, &b]);
        let named = tape.params_named(&weights);
        let loss = (av * bv + named["a"] * named["b"] * 10.0).sum_all();
        // A parameter recorded after the loss has no gradient: an error naming its
        // position, and nothing is taken.
        let late = tape.param(&unused);
        let mut grads = loss.backward().unwrap();
        let e = grads.take_all([av, late]).unwrap_err().to_string();
        assert!(
            e.contains("parameter 1") && e.contains("has no gradient"),
            "{e}"
        );
        let [ga, gb] = grads.take_all([av, bv]).unwrap();
        assert_eq!((ga.to_vec(), gb.to_vec()), (vec![3.0], vec![2.0]));
        let g = grads.take_named(&named).unwrap();
        assert_eq!((g["a"].to_vec(), g["b"].to_vec()), (vec![30.0], vec![20.0]));
        // One variable given twice (or under two names) gets its gradient twice.
        let tape2 = Tape::new();
        let v = tape2.param(&a);
        let both = std::collections::BTreeMap::from([("x".to_string(), v), ("y".to_string(), v)]);
        let mut g2 = (v * v).sum_all().backward().unwrap();
        let [d1, d2] = g2.take_all([v, v]).unwrap();
        assert_eq!((d1.to_vec(), d2.to_vec()), (vec![4.0], vec![4.0]));
        let mut g3 = (v * v).sum_all().backward().unwrap();
        let named2 = g3.take_named(&both).unwrap();
        assert_eq!(named2["x"].to_vec(), named2["y"].to_vec());
        // Taken once: a second take names the parameter.
        let e = grads.take_named(&named).unwrap_err().to_string();
        assert!(e.contains("'a' has no gradient"), "{e}");
    }

    #[test]
    fn a_variable_used_several_times_accumulates_its_gradients() {
        let tape = Tape::<f64>::new();
        let x = tape.param(&t(&[2.0, -1.0], &[2]));
        // f = sum(x*x + x*x*x + 4x): df/dx = 2x + 3x^2 + 4
        let f = (x * x + x * x * x + x * 4.0).sum_all();
        let g = f.backward().unwrap();
        assert_eq!(g[x].to_vec(), vec![20.0, 5.0]);
    }

    #[test]
    fn broadcast_gradients_are_summed_back_to_the_input_shape() {
        let tape = Tape::<f64>::new();
        let x = tape.constant(&t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]));
        let b = tape.param(&t(&[0.0, 0.0, 0.0], &[3]));
        let c = tape.param(&t(&[1.0, 1.0], &[2, 1]));
        let f = ((x + b) * c).sum_all();
        let g = f.backward().unwrap();
        assert_eq!(g[b].to_vec(), vec![2.0, 2.0, 2.0]);
        assert_eq!(g[c].shape(), &[2, 1]);
        assert_eq!(g[c].to_vec(), vec![6.0, 15.0]);
    }

    #[test]
    fn constants_are_not_recorded_and_get_no_gradient() {
        let tape = Tape::<f64>::new();
        let x = tape.constant(&t(&[1.0, 2.0], &[2]));
        let y = x.exp() * 2.0;
        assert!(!y.requires_grad());
        assert_eq!(tape.len(), 0);
        let w = tape.param(&t(&[3.0, 4.0], &[2]));
        let f = (y * w).sum_all();
        assert_eq!(tape.op_names(), vec!["mul", "sum_all"]);
        let g = f.backward().unwrap();
        assert!(g.get(x).is_none());
        assert!(g.get(y).is_none());
        assert!(g.get(f).is_none(), "computed values keep no gradient");
        assert_eq!(g[w].to_vec(), vec![2.0 * 1f64.exp(), 2.0 * 2f64.exp()]);
    }

    #[test]
    fn no_grad_and_detach_stop_gradients() {
        let tape = Tape::<f64>::new();
        let w = tape.param(&t(&[3.0], &[1]));
        let frozen = tape.no_grad(|| w * w);
        assert!(!frozen.requires_grad());
        let d = (w * 2.0).detach();
        let f = (w * frozen + w * d).sum_all();
        // frozen = 9 and d = 6 are constants: df/dw = 9 + 6
        assert_eq!(f.backward().unwrap()[w].to_vec(), vec![15.0]);
        // The no_grad scope closes even if its body panics.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            tape.no_grad(|| panic!("inside"));
        }));
        assert!(r.is_err());
        assert!((w * 1.0).requires_grad());
    }

    #[test]
    fn backward_on_a_non_scalar_is_an_error_unless_seeded() {
        let tape = Tape::<f64>::new();
        let w = tape.param(&t(&[1.0, 2.0], &[2]));
        let y = w * w;
        let e = y.backward().unwrap_err();
        assert!(e.to_string().starts_with("backward: needs a scalar"), "{e}");
        assert!(e.to_string().contains("[2]"));
        let g = y.backward_with(&t(&[1.0, 10.0], &[2])).unwrap();
        assert_eq!(g[w].to_vec(), vec![2.0, 40.0]);
        let e = y.backward_with(&t(&[1.0], &[1])).unwrap_err();
        assert!(
            e.to_string().contains("[2]") && e.to_string().contains("[1]"),
            "{e}"
        );
    }

    #[test]
    fn an_unused_parameter_gets_zeros() {
        let tape = Tape::<f64>::new();
        let used = tape.param(&t(&[1.0], &[1]));
        let unused = tape.param(&t(&[5.0, 6.0], &[2]));
        let g = (used * 3.0).sum_all().backward().unwrap();
        assert_eq!(g[unused].to_vec(), vec![0.0, 0.0]);
    }

    #[test]
    fn op_errors_surface_through_try_forms_and_panics_name_them() {
        let tape = Tape::<f32>::new();
        let a = tape.param(&Tensor::zeros(&[128, 784]));
        let b = tape.param(&Tensor::zeros(&[512, 10]));
        let e = a.try_matmul(b).unwrap_err();
        assert_eq!(
            e.to_string(),
            "matmul: cannot multiply [128, 784] by [512, 10] (inner dimensions 784 and 512 differ)"
        );
        assert_eq!(tape.len(), 0, "a failed op records nothing");
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| a + b));
        let msg = r.unwrap_err().downcast::<String>().unwrap();
        assert_eq!(
            *msg,
            "add: shapes [128, 784] and [512, 10] cannot be broadcast together"
        );
    }

    #[test]
    fn variables_of_two_tapes_do_not_mix() {
        let t1 = Tape::<f64>::new();
        let t2 = Tape::<f64>::new();
        let a = t1.param(&t(&[1.0], &[1]));
        let b = t2.param(&t(&[1.0], &[1]));
        let e = a.try_add(b).unwrap_err();
        assert_eq!(
            e.to_string(),
            "add: the operands are variables of different tapes"
        );
    }

    #[test]
    #[should_panic(expected = "computed on another tape")]
    fn gradients_of_one_tape_refuse_variables_of_another() {
        let t1 = Tape::<f64>::new();
        let t2 = Tape::<f64>::new();
        let a = t1.param(&t(&[1.0], &[1]));
        let b = t2.param(&t(&[1.0], &[1]));
        let g = (a * 2.0).sum_all().backward().unwrap();
        let _ = g.get(b);
    }

    #[test]
    fn reset_frees_the_records_and_invalidates_old_gradients() {
        let mut tape = Tape::<f64>::new();
        let old_id = tape.id;
        {
            let w = tape.param(&t(&[1.0], &[1]));
            let _ = (w * w).sum_all();
        }
        assert_eq!(tape.len(), 2);
        tape.reset();
        assert_eq!(tape.len(), 0);
        assert_ne!(tape.id, old_id);
    }

    #[test]
    fn parameters_share_storage_with_the_caller() {
        let weights = t(&[1.0, 2.0], &[2]);
        let tape = Tape::<f64>::new();
        let w = tape.param(&weights);
        assert_eq!(
            w.value().as_array().as_ptr(),
            weights.as_array().as_ptr(),
            "putting a parameter on the tape must not copy it"
        );
    }

    #[test]
    fn grad_differentiates_to_any_order_and_with_respect_to_inputs() {
        // u(x, w) = tanh(w x): du/dx = w (1 - u^2), d2u/dx2 = -2 w^2 u (1 - u^2).
        let tape = Tape::<f64>::new();
        let x = tape.param(&t(&[0.3, -0.7], &[2]));
        let w = tape.param(&t(&[1.5], &[1]));
        let u = (x * w).tanh();
        let du = u
            .grad_with(
                &[x],
                GradOptions {
                    seed: Some(tape.constant(&Tensor::ones(&[2]))),
                    create_graph: true,
                },
            )
            .unwrap()[0];
        let d2u = du.sum_all().grad(&[x]).unwrap()[0];
        let (uv, wv) = (u.value().to_vec(), 1.5);
        for (i, &ui) in uv.iter().enumerate() {
            let want1 = wv * (1.0 - ui * ui);
            let want2 = -2.0 * wv * wv * ui * (1.0 - ui * ui);
            assert!((du.value().to_vec()[i] - want1).abs() < 1e-12);
            assert!((d2u.value().to_vec()[i] - want2).abs() < 1e-12);
        }
        // A loss made of the derivative trains the parameter: d/dw sum(du) by the tape
        // against d/dw sum(w (1 - tanh(w x)^2)) by central differences.
        let gw = du.sum_all().grad(&[w]).unwrap()[0].item();
        let f = |w: f64| -> f64 {
            [0.3f64, -0.7]
                .iter()
                .map(|&x| w * (1.0 - (w * x).tanh().powi(2)))
                .sum()
        };
        let numeric = (f(1.5 + 1e-6) - f(1.5 - 1e-6)) / 2e-6;
        assert!((gw - numeric).abs() < 1e-7, "{gw} against {numeric}");
    }

    #[test]
    fn grad_of_an_intermediate_and_of_an_unused_variable() {
        let tape = Tape::<f64>::new();
        let x = tape.param(&t(&[2.0], &[1]));
        let unused = tape.param(&t(&[1.0, 1.0], &[2]));
        let h = x * x; // 4
        let y = (h * h).sum_all(); // h^2: dy/dh = 2h = 8, dy/dx = 4 x^3 = 32
        let g = y.grad(&[h, x, unused]).unwrap();
        assert_eq!(g[0].value().to_vec(), vec![8.0]);
        assert_eq!(g[1].value().to_vec(), vec![32.0]);
        assert_eq!(g[2].value().to_vec(), vec![0.0, 0.0]);
        // The same without recording: constants, with the same values.
        let fast = y
            .grad_with(
                &[h, x],
                GradOptions {
                    seed: None,
                    create_graph: false,
                },
            )
            .unwrap();
        assert_eq!(fast[0].value().to_vec(), vec![8.0]);
        assert_eq!(fast[1].value().to_vec(), vec![32.0]);
        assert!(!fast[1].requires_grad());
        assert!(g[1].requires_grad());
    }

    #[test]
    fn differentiating_an_unrecorded_gradient_is_an_error_not_a_silent_zero() {
        let tape = Tape::<f64>::new();
        let w = tape.param(&t(&[3.0], &[1]));
        let loss = (w * w * w).sum_all();
        let unrecorded = GradOptions {
            seed: None,
            create_graph: false,
        };
        let g = loss.grad_with(&[w], unrecorded).unwrap()[0];
        // A penalty on that gradient would contribute nothing to the update, silently.
        let penalty = (g * g).sum_all();
        let total = loss + penalty;
        let e = total.backward().unwrap_err().to_string();
        assert!(
            e.contains("without recording") && e.contains("create_graph") && e.contains("add"),
            "{e}"
        );
        let e = penalty.grad(&[w]).unwrap_err().to_string();
        assert!(e.contains("without recording"), "{e}");
        let e = g.sum_all().grad(&[g]).unwrap_err().to_string();
        assert!(
            e.contains("wrt[0] is a gradient taken without recording"),
            "{e}"
        );
        let e = g.sum_all().backward().unwrap_err().to_string();
        assert!(
            e.starts_with("backward: the differentiated value was computed from a gradient"),
            "{e}"
        );
        // Inside no_grad (an update step) it is a constant on purpose, as after detach().
        let updated = tape.no_grad(|| w - g * 0.1);
        assert!((updated * w).sum_all().backward().is_ok());
        // Detached, it is a constant on purpose; recorded, it trains.
        let as_data = (loss + (g.detach() * w).sum_all()).backward().unwrap();
        assert_eq!(as_data[w].to_vec(), vec![27.0 + 27.0]);
        let g = loss.grad(&[w]).unwrap()[0]; // 3 w^2 = 27
        let total = loss + (g * g).sum_all(); // w^3 + 9 w^4: 3 w^2 + 36 w^3
        assert_eq!(
            total.backward().unwrap()[w].to_vec(),
            vec![27.0 + 36.0 * 27.0]
        );
    }

    #[test]
    fn grad_refuses_constants_foreign_variables_and_wrong_seeds() {
        let tape = Tape::<f64>::new();
        let other = Tape::<f64>::new();
        let x = tape.param(&t(&[1.0, 2.0], &[2]));
        let c = tape.constant(&t(&[1.0], &[1]));
        let y = (x * x).sum_all();
        let e = y.grad(&[c]).unwrap_err().to_string();
        assert_eq!(
            e,
            "grad: wrt[0] is a constant: gradients exist only with respect to parameters \
             (Tape::param) and values computed from them"
        );
        let foreign = other.param(&t(&[1.0], &[1]));
        let e = y.grad(&[x, foreign]).unwrap_err().to_string();
        assert!(e.contains("wrt[1] is a variable of another tape"), "{e}");
        let e = (x * x).grad(&[x]).unwrap_err().to_string();
        assert!(e.contains("needs a scalar") && e.contains("[2]"), "{e}");
        let seed = tape.constant(&t(&[1.0, 1.0, 1.0], &[3]));
        let options = GradOptions {
            seed: Some(seed),
            create_graph: true,
        };
        let e = (x * x).grad_with(&[x], options).unwrap_err().to_string();
        assert!(e.contains("[2]") && e.contains("[3]"), "{e}");
    }

    /// An op whose backward returns a gradient of the wrong shape.
    struct Broken;
    impl Op<f64> for Broken {
        fn name(&self) -> &'static str {
            "broken"
        }
        fn forward(&self, x: &[&Tensor<f64>]) -> Result<Tensor<f64>> {
            Ok(x[0].clone())
        }
        fn backward<V: crate::Operand<f64>>(
            &self,
            _: &[&V],
            _: &V,
            dy: &V,
            dx: &mut InputGrads<'_, V>,
        ) {
            dx.set(0, dy.constant(Tensor::zeros(&[7])));
        }
    }

    #[test]
    #[should_panic(expected = "the backward of `broken` gave input 0 a gradient of shape [7]")]
    fn a_backward_rule_with_a_wrong_shape_is_reported_by_name() {
        let tape = Tape::<f64>::new();
        let w = tape.param(&t(&[1.0, 2.0], &[2]));
        let y = tape.apply(Broken, [w]).unwrap();
        let _ = y.sum_all().backward();
    }
}
