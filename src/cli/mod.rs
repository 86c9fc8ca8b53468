//! The scriptable command line: a thin layer that parses arguments, calls the engine and
//! prints tables, JSON or CSV. `memscope-bench` (src/bin) shares its global options, typed
//! arguments and output.

pub mod args;
mod export;
mod figure;
mod import;
mod info;
mod intervene;
pub mod logger;
mod mitigate;
pub mod output;
mod progress;
mod report;
mod select;
mod studies;
mod train;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use burn::prelude::Device;
use clap::{Parser, Subcommand};

use memscope_core::data::open::DataRoot;
use memscope_core::data::{GroupedDataset, OpenOptions};
use memscope_core::device::{self, DeviceSpec};
use memscope_core::experiment::{Experiment, demo};

#[derive(Parser, Debug)]
#[command(
    name = "memscope",
    version = concat!(env!("CARGO_PKG_VERSION"), " (libtorch ", env!("MEMSCOPE_LIBTORCH"), ")"),
    about = "Explore spurious memorization: critical neurons that memorize minority groups",
    after_help = "Without a subcommand, `memscope` opens the explorer on the bundled demo (as `memscope explore`)."
)]
pub struct Cli {
    #[command(flatten)]
    globals: Globals,
    #[command(subcommand)]
    command: Option<Command>,
}

/// The options of every command.
#[derive(clap::Args, Debug)]
pub struct Globals {
    /// Compute device: cpu, cuda or cuda:N.
    #[arg(long, global = true, default_value = "cpu")]
    pub device: DeviceSpec,
    /// libtorch threads, 0..=1024 (0: libtorch's default, one per core).
    #[arg(long, global = true, default_value_t = 0, allow_negative_numbers = true, value_parser = args::threads)]
    threads: usize,
    /// On CUDA, let convolutions and matrix products round to TF32: faster on Ampere and later
    /// GPUs, further from the CPU's float32 (off: as PyTorch with TF32 disabled; cuDNN is always
    /// deterministic).
    #[arg(long, global = true)]
    tf32: bool,
    /// Where the experiment's image folder is now, when it moved since training (replaces the
    /// recorded path; the folder itself or one that holds it). Default: $MEMSCOPE_DATA_ROOT.
    #[arg(long, global = true, value_name = "DIR")]
    data_root: Option<PathBuf>,
    /// Leave out images that are missing or do not decode (listed on stderr; every count
    /// then says how many were skipped) instead of stopping at the first.
    #[arg(long, global = true)]
    skip_bad_images: bool,
    /// Keep the transformed 8-bit pixels of image folders in DIR (built once, with a progress
    /// bar; found again by a hash of the metadata, the image files' sizes and the transform).
    /// Default: $MEMSCOPE_PIXEL_CACHE; none without it.
    #[arg(long, global = true, value_name = "DIR")]
    pixel_cache: Option<PathBuf>,
}

impl Globals {
    /// Sets libtorch's threads and opens the device with the numerics asked for.
    pub fn device(&self) -> Result<Device> {
        device::set_threads(self.threads);
        self.device.open(device::Numerics { tf32: self.tf32 })
    }

    /// The data flags, with the environment's where no flag is given.
    pub fn data(&self) -> DataFlags {
        DataFlags::new(self)
    }
}

/// The environment variable that gives the data root when --data-root does not.
pub const DATA_ROOT_VAR: &str = "MEMSCOPE_DATA_ROOT";
/// The environment variable that gives the pixel cache folder when --pixel-cache does not.
pub const PIXEL_CACHE_VAR: &str = "MEMSCOPE_PIXEL_CACHE";

/// The global data flags (`--data-root` or `MEMSCOPE_DATA_ROOT`, `--skip-bad-images`).
#[derive(Clone, Debug, Default)]
pub struct DataFlags {
    root: Option<DataRoot>,
    skip_bad_images: bool,
    pixel_cache: Option<PathBuf>,
}

impl DataFlags {
    fn new(globals: &Globals) -> DataFlags {
        let root = match &globals.data_root {
            Some(dir) => Some(DataRoot { dir: dir.clone(), from: "--data-root" }),
            None => std::env::var_os(DATA_ROOT_VAR)
                .filter(|v| !v.is_empty())
                .map(|v| DataRoot { dir: PathBuf::from(v), from: DATA_ROOT_VAR }),
        };
        let pixel_cache = globals
            .pixel_cache
            .clone()
            .or_else(|| std::env::var_os(PIXEL_CACHE_VAR).filter(|v| !v.is_empty()).map(PathBuf::from));
        DataFlags { root, skip_bad_images: globals.skip_bad_images, pixel_cache }
    }

    /// How to open an experiment's data set, with `subset` if asked for.
    pub fn options(&self, subset: &args::SubsetArgs) -> OpenOptions {
        OpenOptions {
            data_root: self.root.clone(),
            skip_bad_images: self.skip_bad_images,
            max_per_group: subset.max_per_group,
            subset_seed: subset.subset_seed,
            pixel_cache: self.pixel_cache.clone(),
        }
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The explorer: a terminal UI that runs interventions live (the default).
    Explore {
        /// Experiment folder (default: the bundled demo).
        #[arg(long)]
        experiment: Option<PathBuf>,
        #[command(flatten)]
        session: args::SessionArgs,
        #[command(flatten)]
        subset: args::SubsetArgs,
        /// High contrast for a projector: no grey text (also `presenter: true` in the config).
        #[arg(long)]
        presenter: bool,
        /// Hooks for `memscope-bench` and the end-to-end tests (see `tui::hooks`).
        #[command(flatten)]
        hooks: crate::tui::hooks::HookArgs,
    },
    /// Layers, groups and per-group accuracy of an experiment at one epoch.
    ///
    /// Parameters are counted as PyTorch's `sum(p.numel() for p in model.parameters())`
    /// counts them (conv and linear weights and biases, BatchNorm weight and bias); BatchNorm's
    /// running_mean and running_var are buffers, counted apart (num_batches_tracked is not
    /// stored).
    Info(info::InfoArgs),
    /// Train a model by ERM, keeping a checkpoint for every epoch.
    Train(train::TrainArgs),
    /// Make an experiment of another tool's training run (PyTorch, safetensors or burn
    /// checkpoints, one per epoch), referring to its files without copying them.
    Import(import::ImportArgs),
    /// The top-scoring neurons with their magnitude and gradient ranks.
    Scores(studies::ScoresArgs),
    /// Zero-out, re-initialise, add noise to or rewind the top neurons; per-group change.
    Intervene(intervene::InterveneArgs),
    /// Rewind one whole layer to an earlier epoch; per-group change.
    Rewind(intervene::RewindArgs),
    /// Rank histograms: magnitude rank of top-gradient neurons and the reverse, per group.
    ///
    /// The default granularity is unit (one conv filter, one linear unit), the neuron of the
    /// authors' code and of every other command, so the histograms describe the neurons that
    /// `intervene` changes. The slides only say "neuron" (a picture of a conv layer), and their
    /// 0.01% of a ResNet-50 is 2 or 3 filters but about 2,500 weights, so their histograms may
    /// well be of kernels or weights. On the demo the histograms cluster at 95-100% at
    /// --granularity kernel or weight, not at unit: pass one of those to compare with the slides.
    Ranks(studies::RanksArgs),
    /// Sensitive layers: rewind each layer by n epochs, per-group change and counts.
    ///
    /// The threshold is in points of accuracy; the output also gives it in examples of each
    /// group (with 100 examples, 1 point = 1 example).
    Sensitivity(studies::SensitivityArgs),
    /// Control: zero random non-critical neurons beside the same number of critical ones.
    Control(studies::ControlArgs),
    /// Stage 2: fine-tune from a checkpoint with the paper's mitigation or a baseline (erm,
    /// jtt, group-dro, dfr), writing a new experiment that records its parent and settings.
    ///
    /// Every training method shares the released mitigation's fine-tuning (Adam lr 2e-4,
    /// batch 100, 21 epochs, plateau schedule x0.5 patience 1, random resized crop 0.7-1 and
    /// flip) unless told otherwise, so that only the objective differs; the baselines'
    /// own defaults (step size, λ_up, C grid) come from their reference code. Epoch 0 of the new
    /// experiment is the start checkpoint; each later epoch is recorded with its train and val
    /// accuracy (measured after that epoch's updates).
    Mitigate(Box<mitigate::MitigateArgs>),
    /// Compare experiments (a parent and its mitigations, over seeds): worst-group, mean and
    /// average accuracy on val and test, at the last epoch and at the best val worst-group epoch.
    Compare(mitigate::CompareArgs),
    #[command(about = figure::about())]
    Figure(figure::FigureArgs),
    /// One self-contained HTML page with the Stage 1 story on an experiment: data and groups,
    /// ERM accuracy, interventions, rank histograms, sensitive layers, the control, and a
    /// sentence per claim of the paper saying whether it holds here.
    Report(report::ReportArgs),
    /// Write checkpoints and split data as safetensors (PyTorch names and layouts).
    Export(export::ExportArgs),
}

/// The command line `args` (the program name first) as `T`; `--help` and `--version` print
/// and exit; a mistake is one line naming the option.
pub fn parse<T: Parser>(args: impl IntoIterator<Item = OsString>) -> Result<T> {
    match T::try_parse_from(args) {
        Ok(parsed) => Ok(parsed),
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => anyhow::bail!("{} (see {} --help)", first_line(&e), T::command().get_name()),
    }
}

/// The exit code of `result`, saying on stderr what went wrong as `program`.
pub fn exit_code(program: &str, result: Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // A closed pipe (`memscope info | head`) is not an error worth a message.
            if error.chain().any(|e| {
                e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("{program}: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs memscope with command-line `args` (the program name first). libtorch running out of
/// memory where no pass caught it (see `memscope_core::device::Pass`) is one line too.
pub fn run(args: impl IntoIterator<Item = OsString>) -> Result<()> {
    let cli: Cli = parse(args)?;
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| dispatch(cli))) {
        Ok(result) => result,
        Err(payload) => match device::uncaught_out_of_memory(payload.as_ref()) {
            Some(line) => Err(anyhow::anyhow!(line)),
            None => std::panic::resume_unwind(payload),
        },
    }
}

fn dispatch(cli: Cli) -> Result<()> {
    let device = cli.globals.device()?;
    let data = cli.globals.data();
    match cli.command {
        Some(Command::Info(args)) => info::run(args, &device, &data),
        Some(Command::Train(args)) => {
            if cli.globals.data_root.is_some() {
                anyhow::bail!(
                    "--data-root is for commands that open an experiment; train reads the folder --data names"
                );
            }
            train::run(args, &device, data.skip_bad_images)
        }
        Some(Command::Import(args)) => {
            if cli.globals.data_root.is_some() {
                anyhow::bail!(
                    "--data-root is for commands that open an experiment; import reads the folder --data names"
                );
            }
            import::run(args, &device)
        }
        Some(Command::Scores(args)) => studies::run_scores(args, &device, &data),
        Some(Command::Intervene(args)) => intervene::run_intervene(args, &device, &data),
        Some(Command::Rewind(args)) => intervene::run_rewind(args, &device, &data),
        Some(Command::Ranks(args)) => studies::run_ranks(args, &device, &data),
        Some(Command::Sensitivity(args)) => studies::run_sensitivity(args, &device, &data),
        Some(Command::Control(args)) => studies::run_control(args, &device, &data),
        Some(Command::Mitigate(args)) => mitigate::run_mitigate(*args, &device, &data),
        Some(Command::Compare(args)) => mitigate::run_compare(args, &device, &data),
        Some(Command::Export(args)) => export::run(args, &data),
        Some(Command::Figure(args)) => figure::run(args, &device, &data),
        Some(Command::Report(args)) => report::run(args, &device, &data),
        Some(Command::Explore { experiment, session, subset, presenter, hooks }) => {
            let options = data.options(&subset);
            let mut bar = cache_bar(&options);
            let budgets = session.budgets();
            crate::tui::run(experiment, device, budgets, &options, presenter, hooks.hook(), bar.as_mut())
        }
        None => {
            let options = data.options(&args::SubsetArgs::default());
            let budgets = memscope_core::session::Budgets::default();
            crate::tui::run(None, device, budgets, &options, false, None, cache_bar(&options).as_mut())
        }
    }
}

/// clap's first line says what is wrong (the usage block after it is noise here); a range
/// check of ours ("must ...") is said with the option and value: "--fraction -0.1 must be in (0, 1]".
fn first_line(e: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() == ErrorKind::ValueValidation
        && let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg)
        && let Some(ContextValue::String(value)) = e.get(ContextKind::InvalidValue)
        && let Some(source) = std::error::Error::source(e).map(|s| s.to_string())
        && source.starts_with("must ")
    {
        let flag = arg.split([' ', '=']).next().unwrap_or(arg);
        return format!("{flag} {value} {source}");
    }
    let text = e.render().to_string();
    let first = text.lines().next().unwrap_or("invalid arguments").trim_start_matches("error: ");
    if e.kind() == ErrorKind::MissingRequiredArgument {
        // The arguments are listed on the indented lines that follow.
        let missing: Vec<&str> =
            text.lines().skip(1).take_while(|l| l.starts_with("  ")).map(str::trim).collect();
        return format!("{first} {}", missing.join(", "));
    }
    first.to_string()
}

/// The bar shown while a pixel cache is built (nothing else reports while a data set opens).
fn cache_bar(options: &OpenOptions) -> Box<dyn memscope_core::jobs::Progress> {
    match options.pixel_cache {
        Some(_) => Box::new(progress::Bar::new("pixel cache (images)")),
        None => Box::new(memscope_core::jobs::Silent),
    }
}

/// The experiment named by `--experiment`, or the bundled demo; with its data set opened as
/// `options` say (skipped images are listed on stderr).
pub fn open_experiment(dir: Option<PathBuf>, options: &OpenOptions) -> Result<(Experiment, GroupedDataset)> {
    let dir = match dir {
        Some(dir) => dir,
        None => demo::locate()?,
    };
    let experiment = Experiment::open(&dir)?;
    let dataset =
        experiment.manifest.dataset.open_with(&experiment.dir, options, cache_bar(options).as_mut())?;
    if let Some(listing) = dataset.changes.skipped_listing(&dataset.name) {
        eprintln!("{listing}");
    }
    Ok((experiment, dataset))
}

/// The command line's defaults are the specs' (the commands parse no study setting of their
/// own), so each command's numbers match the report's and the explorer's.
#[cfg(test)]
mod tests {
    use clap::{Args, FromArgMatches};

    use memscope_core::experiment::Experiment;
    use memscope_core::report::ReportSpec;
    use memscope_core::studies::control::ControlSpec;
    use memscope_core::studies::grid::default_interventions;
    use memscope_core::studies::intervention::InterventionSpec;
    use memscope_core::studies::ranks::RankSpec;
    use memscope_core::studies::sensitivity::SensitivitySpec;

    /// `T` as a command given only `argv` parses it.
    fn parsed<T: Args + FromArgMatches>(argv: &[&str]) -> T {
        let command = T::augment_args(clap::Command::new("test").no_binary_name(true));
        T::from_arg_matches(&command.try_get_matches_from(argv).unwrap()).unwrap()
    }

    #[test]
    fn the_command_line_defaults_are_the_specs() {
        let exp = Experiment::open(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/checkpoints/spurious-digits"
        )))
        .unwrap();
        let dataset = exp.manifest.dataset.load().unwrap();

        let ranks: super::studies::RanksSettings = parsed(&[]);
        assert_eq!(ranks.spec(40), RankSpec::at(40));
        let sensitivity: super::studies::SensitivitySettings = parsed(&[]);
        assert_eq!(sensitivity.spec(40), SensitivitySpec::at(40));
        let control: super::studies::ControlArgs = parsed(&[]);
        assert_eq!(control.spec(&dataset, 40).unwrap(), ControlSpec::for_data(&dataset, 40));

        let intervene: super::intervene::InterveneArgs = parsed(&[]);
        let query = intervene.scoring.query(&dataset, intervene.target.seed, intervene.count.top()).unwrap();
        let spec = InterventionSpec::neurons(40)
            .seed(intervene.target.seed)
            .query(query)
            .change(intervene.change.intervention().unwrap())
            .on(intervene.target.split)
            .repeats(intervene.change.repeats);
        assert_eq!(spec, InterventionSpec::for_data(&dataset, 40));

        let bars: super::figure::BarsSettings = parsed(&[]);
        let kinds: Vec<_> = bars.kinds.iter().map(|k| k.intervention(None, false, None)).collect();
        assert_eq!(kinds, default_interventions());

        let report: super::report::ReportArgs = parsed(&["--out", "r.html"]);
        assert_eq!(report.spec(), ReportSpec::default());
    }
}
