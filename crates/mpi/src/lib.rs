//! Data-parallel training of brick models across processes and machines over MPI (Open MPI
//! or MPICH, started by `mpirun` or Slurm).
//!
//! [`init`] joins the job and gives this process's [`Communicator`]; given to
//! [`Sequential::distribute`](brick::nn::Sequential::distribute), it makes `fit` train
//! each rank on its share of every global batch and end with the weights one process would
//! reach. [`run`] wraps a program's `main` so that an error on one rank ends the whole job
//! at once (`MPI_Abort`) instead of leaving the others waiting.
//!
//! ```no_run
//! use brick::prelude::*;
//! fn main() -> std::process::ExitCode {
//!     brick_mpi::run(|comm| {
//!         let mut model = Sequential::with_seed(7);
//!         model.add(Dense::new(8).input_dim(4).activation("relu"))?;
//!         model.add(Dense::new(3).activation("softmax"))?;
//!         model.compile("adam", "categorical_crossentropy", ["accuracy"])?;
//!         model.distribute(comm);
//!         // ... model.fit(&x, &y, FitOptions::default())?, the same on every rank
//!         Ok(())
//!     })
//! }
//! ```

use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use brick::nn::distributed::Communicator;
use brick::nn::{Error, Result};
use mpi::Threading;
use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::Communicator as _;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

/// This process's place in an MPI job, as a [`Communicator`] over `MPI_COMM_WORLD`.
pub struct Mpi {
    world: SimpleCommunicator,
    /// Every MPI call is made holding this lock: MPI was initialized for serialized calls
    /// (any thread, one at a time). It guards the send buffers of the sums too, reused
    /// from step to step (MPI's sum reads one buffer and writes another).
    lock: Mutex<SendBuffers>,
    rank: usize,
    size: usize,
}

#[derive(Default)]
struct SendBuffers {
    f32s: Vec<f32>,
    f64s: Vec<f64>,
}

/// MPI, joined: finalized when dropped, on the thread that called [`init`] (it is not
/// `Send`). Keep it alive while the communicator is used.
pub struct Session {
    comm: Arc<Mpi>,
    _universe: Universe,
}

impl Session {
    /// This process's communicator, for [`Sequential::distribute`](brick::nn::Sequential::distribute).
    pub fn comm(&self) -> Arc<Mpi> {
        Arc::clone(&self.comm)
    }
}

// SAFETY: `Mpi` holds MPI handles (`MPI_Comm`, pointers in Open MPI), which rsmpi marks as
// neither `Send` nor `Sync` because MPI forbids calls from several threads unless the
// library was initialized for it. `init` initializes with `MPI_THREAD_SERIALIZED` (and
// refuses a library that grants less), under which any thread may call MPI as long as no
// two calls overlap; every method below takes `lock` for the whole of its MPI call, so no
// two overlap. The handles themselves are plain values valid in every thread of the
// process; the `Universe`, whose drop finalizes MPI, is not in `Mpi` but in the `Session`,
// which stays on the thread that initialized. Exercised by the crate's tests, whose `fit`
// calls these methods from the thread that runs it.
unsafe impl Send for Mpi {}
// SAFETY: as for `Send`: shared access goes through `lock`.
unsafe impl Sync for Mpi {}

/// Joins the MPI job (a single process of one rank when not started by `mpirun`).
///
/// # Errors
/// If MPI was initialized before, or the library cannot serve calls from more than one
/// thread (`MPI_THREAD_SERIALIZED`).
pub fn init() -> Result<Session> {
    let (universe, threading) = mpi::initialize_with_threading(Threading::Serialized)
        .ok_or_else(|| Error::config("brick_mpi::init", "MPI was already initialized"))?;
    if threading < Threading::Serialized {
        return Err(Error::config(
            "brick_mpi::init",
            format!("the MPI library grants {threading:?} threading; brick needs Serialized"),
        ));
    }
    let world = universe.world();
    let (rank, size) = (world.rank() as usize, world.size() as usize);
    let comm = Arc::new(Mpi {
        world,
        lock: Mutex::new(SendBuffers::default()),
        rank,
        size,
    });
    Ok(Session {
        comm,
        _universe: universe,
    })
}

impl Mpi {
    fn locked<R>(&self, f: impl FnOnce(&SimpleCommunicator, &mut SendBuffers) -> R) -> R {
        let mut buffers = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        f(&self.world, &mut buffers)
    }

    /// Ends every process of the job with `code` (`MPI_Abort`).
    pub fn abort(&self, code: i32) -> ! {
        // Not under the lock: another thread may hold it inside a collective that will
        // never finish, and MPI_Abort is allowed then.
        self.world.abort(code)
    }
}

impl Communicator for Mpi {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.size
    }
    fn all_sum_f32(&self, buf: &mut [f32]) -> Result<()> {
        self.locked(|w, b| {
            b.f32s.clear();
            b.f32s.extend_from_slice(buf);
            w.all_reduce_into(&b.f32s[..], buf, SystemOperation::sum())
        });
        Ok(())
    }
    fn all_sum_f64(&self, buf: &mut [f64]) -> Result<()> {
        self.locked(|w, b| {
            b.f64s.clear();
            b.f64s.extend_from_slice(buf);
            w.all_reduce_into(&b.f64s[..], buf, SystemOperation::sum())
        });
        Ok(())
    }
    fn broadcast_f32(&self, buf: &mut [f32], root: usize) -> Result<()> {
        self.locked(|w, _| w.process_at_rank(root as i32).broadcast_into(buf));
        Ok(())
    }
    fn broadcast_f64(&self, buf: &mut [f64], root: usize) -> Result<()> {
        self.locked(|w, _| w.process_at_rank(root as i32).broadcast_into(buf));
        Ok(())
    }
    fn all_gather_u64(&self, values: &[u64]) -> Result<Vec<u64>> {
        // Lengths first, so that ranks giving different lengths get an error, not garbage.
        let mut lens = vec![0u64; self.size()];
        self.locked(|w, _| w.all_gather_into(&(values.len() as u64), &mut lens[..]));
        if lens.iter().any(|&l| l != values.len() as u64) {
            return Err(Error::config(
                "all_gather",
                format!("every rank must give the same length, got {lens:?} by rank"),
            ));
        }
        let mut out = vec![0u64; values.len() * self.size()];
        self.locked(|w, _| w.all_gather_into(values, &mut out[..]));
        Ok(out)
    }
}

/// Runs `main` on this rank with its communicator. An error or a panic is printed
/// (`rank N: error: ...`) and ends the whole job with exit code 1 at once, so that no rank
/// waits for one that has given up.
pub fn run(
    main: impl FnOnce(Arc<dyn Communicator>) -> std::result::Result<(), Box<dyn std::error::Error>>,
) -> ExitCode {
    let session = match init() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mpi = session.comm();
    let comm: Arc<dyn Communicator> = mpi.clone();
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| main(comm))) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("rank {}: error: {e}", mpi.rank());
            mpi.abort(1)
        }
        // The panic's message was printed by the panic hook.
        Err(_) => {
            eprintln!("rank {}: panicked", mpi.rank());
            mpi.abort(1)
        }
    }
}
