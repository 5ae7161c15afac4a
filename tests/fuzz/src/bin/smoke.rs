//! The stable-Rust fuzz runner (CI has no nightly): every target of the
//! library runs over its seed corpus, then over random mutations of the
//! seeds (bit flips, byte changes, insertions, deletions, truncations,
//! splices, duplicated ranges, boundary integers, protocol words) until
//! its time is up. A panic is caught per input; its input goes to the
//! crash directory with the message beside it, and the run exits 1. An
//! input running longer than the timeout is saved too (exit 3).
//!
//! `smoke [--seconds S] [--timeout S] [--seed N] [--corpus DIR]
//!        [--crashes DIR] [--only NAME]...`
//! `smoke --only NAME --run FILE`: run one input (a saved crash), print
//! what it does; `smoke --only NAME --minimize FILE`: cut the input down
//! while it still fails at the same place, into `FILE.min`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oxrsyncd_fuzz::{Target, TARGETS};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Words that mean something to one parser or another.
const WORDS: &[&[u8]] = &[
    b"\n",
    b"\0",
    b"\r\n",
    b" ",
    b"@RSYNCD: ",
    b"@RSYNCD: 31.0\n",
    b"#list\n",
    b"--server\0",
    b"--sender\0",
    b".\0",
    b"-e.",
    b"/../",
    b"..",
    b"**",
    b"***",
    b"[!a-z]",
    b"%",
    b"%RSYNC_USER_NAME%",
    b"[mod]\n",
    b" = ",
    b"\"",
    b"PROXY TCP4 ",
    b"\r\n\r\n\0\r\nQUIT\n",
    b"- ",
    b"+ ",
    b": ",
    b"!",
    b"\\",
];
const INTS: &[i64] = &[
    0,
    1,
    -1,
    2,
    127,
    128,
    255,
    256,
    0x7fff,
    0x8000,
    0xffff,
    0x10000,
    i32::MAX as i64,
    i32::MIN as i64,
    i64::MAX,
];

struct Options {
    seconds: f64,
    timeout: Duration,
    seed: u64,
    corpus: PathBuf,
    crashes: PathBuf,
    only: Vec<String>,
    run: Option<PathBuf>,
    minimize: Option<PathBuf>,
}

fn parse_args() -> Result<Options, String> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut o = Options {
        seconds: 5.0,
        timeout: Duration::from_secs(20),
        seed: rand::random(),
        corpus: here.join("corpus"),
        crashes: here.join("smoke-crashes"),
        only: Vec::new(),
        run: None,
        minimize: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--seconds" => o.seconds = value()?.parse().map_err(|e| format!("--seconds: {e}"))?,
            "--timeout" => o.timeout = Duration::from_secs_f64(value()?.parse().map_err(|e| format!("--timeout: {e}"))?),
            "--seed" => o.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--corpus" => o.corpus = value()?.into(),
            "--crashes" => o.crashes = value()?.into(),
            "--only" => o.only.push(value()?),
            "--run" => o.run = Some(value()?.into()),
            "--minimize" => o.minimize = Some(value()?.into()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if (o.run.is_some() || o.minimize.is_some()) && o.only.len() != 1 {
        return Err("--run and --minimize need one --only TARGET".into());
    }
    if let Some(bad) = o.only.iter().find(|n| !TARGETS.iter().any(|t| t.name == n.as_str())) {
        return Err(format!("no target named {bad}"));
    }
    Ok(o)
}

/// The input being run, for the watchdog.
struct Current {
    target: &'static str,
    started: Instant,
    input: Vec<u8>,
    busy: bool,
}

/// What the panic hook saw.
static PANIC: Mutex<Option<String>> = Mutex::new(None);

fn main() -> ExitCode {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("smoke: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = oxrsyncd_fuzz::check_environment() {
        eprintln!("smoke: {e}");
        return ExitCode::from(2);
    }
    std::panic::set_hook(Box::new(|info| {
        let text = format!("{info}\n{}", std::backtrace::Backtrace::force_capture());
        if let Ok(mut slot) = PANIC.lock() {
            *slot = Some(text);
        }
    }));
    let current = Arc::new(Mutex::new(Current {
        target: "",
        started: Instant::now(),
        input: Vec::new(),
        busy: false,
    }));
    watchdog(current.clone(), o.timeout, o.crashes.clone());
    if let Some(target) = TARGETS.iter().find(|t| o.only.first().is_some_and(|n| n == t.name)) {
        if let Some(file) = &o.run {
            return reproduce(target, file, &current);
        }
        if let Some(file) = &o.minimize {
            return minimize(target, file, &current);
        }
    }
    println!("smoke: seed {}, {} s per target", o.seed, o.seconds);
    let mut rng = StdRng::seed_from_u64(o.seed);
    let mut failed = 0;
    let started = Instant::now();
    for target in TARGETS.iter().filter(|t| o.only.is_empty() || o.only.iter().any(|n| n == t.name)) {
        match run_target(target, &o, &mut rng, &current) {
            Ok((execs, seeds)) => println!("{:<14} ok     {execs:>9} execs ({seeds} seeds)", target.name),
            Err((execs, file)) => {
                failed += 1;
                println!("{:<14} CRASH  {execs:>9} execs: input in {}", target.name, file.display());
            }
        }
    }
    println!("smoke: {failed} target(s) crashed, {:.0} s in all", started.elapsed().as_secs_f64());
    if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Seeds, then mutations until the target's time is up. `Err` names the
/// saved crash input.
fn run_target(target: &Target, o: &Options, rng: &mut StdRng, current: &Mutex<Current>) -> Result<(u64, usize), (u64, PathBuf)> {
    let seeds = load_seeds(&o.corpus.join(target.name), target.max_len);
    let deadline = Instant::now() + Duration::from_secs_f64(o.seconds);
    let mut execs = 0u64;
    let mut i = 0usize;
    loop {
        let input = if i < seeds.len() {
            seeds[i].clone()
        } else {
            mutate(&seeds, rng, target.max_len)
        };
        i += 1;
        execs += 1;
        if let Err(message) = run_one(target, &input, current) {
            let file = save(&o.crashes, target.name, "crash", &input, &message);
            eprintln!("{}: {}", target.name, message.lines().next().unwrap_or_default());
            return Err((execs, file));
        }
        if i >= seeds.len() && Instant::now() >= deadline {
            return Ok((execs, seeds.len()));
        }
    }
}

fn run_one(target: &Target, input: &[u8], current: &Mutex<Current>) -> Result<(), String> {
    if let Ok(mut c) = current.lock() {
        c.target = target.name;
        c.started = Instant::now();
        c.input.clear();
        c.input.extend_from_slice(input);
        c.busy = true;
    }
    let result = std::panic::catch_unwind(|| (target.run)(input));
    if let Ok(mut c) = current.lock() {
        c.busy = false;
    }
    result.map_err(|_| PANIC.lock().ok().and_then(|mut p| p.take()).unwrap_or_else(|| "panic".into()))
}

/// `--run`: one input, its panic (if any) printed whole.
fn reproduce(target: &Target, file: &Path, current: &Mutex<Current>) -> ExitCode {
    let input = match std::fs::read(file) {
        Ok(input) => input,
        Err(e) => {
            eprintln!("smoke: {}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    match run_one(target, &input, current) {
        Ok(()) => {
            println!("{}: {} ran without a panic", target.name, file.display());
            ExitCode::SUCCESS
        }
        Err(message) => {
            println!("{}: {} panics:\n{message}", target.name, file.display());
            ExitCode::from(1)
        }
    }
}

/// `--minimize`: drop chunks (halving their size down to one byte) while
/// the input still panics at the same place; the result goes to FILE.min.
fn minimize(target: &Target, file: &Path, current: &Mutex<Current>) -> ExitCode {
    let Ok(mut input) = std::fs::read(file) else {
        eprintln!("smoke: cannot read {}", file.display());
        return ExitCode::from(2);
    };
    let place = |input: &[u8]| {
        run_one(target, input, current)
            .err()
            .and_then(|m| m.lines().next().map(str::to_string))
    };
    let Some(want) = place(&input) else {
        eprintln!("smoke: {} does not panic", file.display());
        return ExitCode::from(2);
    };
    let mut chunk = input.len().max(1);
    while chunk >= 1 {
        let mut at = 0;
        while at < input.len() {
            let mut shorter = input.clone();
            shorter.drain(at..(at + chunk).min(input.len()));
            if place(&shorter).as_deref() == Some(want.as_str()) {
                input = shorter;
            } else {
                at += chunk;
            }
        }
        chunk /= 2;
    }
    let out = file.with_extension("min");
    match std::fs::write(&out, &input) {
        Ok(()) => {
            println!("{}: {} bytes, still {want}: {}", target.name, input.len(), out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("smoke: {}: {e}", out.display());
            ExitCode::from(2)
        }
    }
}

/// Exit (3) with the input saved when one runs longer than `timeout`.
fn watchdog(current: Arc<Mutex<Current>>, timeout: Duration, crashes: PathBuf) {
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(200));
        let Ok(c) = current.lock() else { return };
        if c.busy && c.started.elapsed() > timeout {
            let message = format!("input still running after {} s", timeout.as_secs_f64());
            let file = save(&crashes, c.target, "timeout", &c.input, &message);
            println!("{:<14} TIMEOUT: input in {}", c.target, file.display());
            std::process::exit(3);
        }
    });
}

fn load_seeds(dir: &Path, max_len: usize) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    files.sort();
    let mut seeds: Vec<Vec<u8>> = files
        .iter()
        .filter_map(|f| std::fs::read(f).ok())
        .map(|mut s| {
            s.truncate(max_len);
            s
        })
        .collect();
    if seeds.is_empty() {
        seeds.push(Vec::new());
    }
    seeds
}

/// Write the input (and the message beside it, `.txt`); returns its path.
fn save(dir: &Path, target: &str, kind: &str, input: &[u8], message: &str) -> PathBuf {
    let hash = input
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let file = dir.join(format!("{target}-{kind}-{hash:016x}"));
    let written = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&file, input))
        .and_then(|()| std::fs::write(file.with_extension("txt"), message));
    if let Err(e) = written {
        eprintln!("smoke: cannot save {}: {e}", file.display());
    }
    file
}

/// A seed changed in one to eight places.
fn mutate(seeds: &[Vec<u8>], rng: &mut StdRng, max_len: usize) -> Vec<u8> {
    let mut d = seeds[rng.gen_range(0..seeds.len())].clone();
    for _ in 0..rng.gen_range(1..=8) {
        let len = d.len();
        let at = rng.gen_range(0..=len);
        match rng.gen_range(0..9) {
            0 if len > 0 => d[at.min(len - 1)] ^= 1 << rng.gen_range(0..8),
            1 if len > 0 => d[at.min(len - 1)] = *[0u8, 0xff, 0x7f, 0x80, 1, rng.gen()].get(rng.gen_range(0..6)).unwrap_or(&0),
            2 => {
                let n = rng.gen_range(1..=16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
                d.splice(at..at, bytes);
            }
            3 if len > 0 => {
                let end = rng.gen_range(at.min(len)..=len.min(at + 64));
                d.drain(at.min(len)..end);
            }
            4 => d.truncate(at),
            5 => {
                let other = &seeds[rng.gen_range(0..seeds.len())];
                if !other.is_empty() {
                    let from = rng.gen_range(0..other.len());
                    let to = rng.gen_range(from..=other.len().min(from + 256));
                    if rng.gen() {
                        d.splice(at..at, other[from..to].iter().copied());
                    } else {
                        d.truncate(at);
                        d.extend_from_slice(&other[from..]);
                    }
                }
            }
            6 if len > 0 => {
                let from = rng.gen_range(0..len);
                let to = rng.gen_range(from..=len.min(from + 128));
                let copy = d[from..to].to_vec();
                d.splice(at..at, copy);
            }
            7 => {
                let v = INTS[rng.gen_range(0..INTS.len())];
                let width = [1usize, 2, 4, 8][rng.gen_range(0..4)];
                let bytes = v.to_le_bytes();
                let end = (at + width).min(len);
                d.splice(at..end, bytes[..width].iter().copied());
            }
            _ => {
                let word = WORDS[rng.gen_range(0..WORDS.len())];
                d.splice(at..at, word.iter().copied());
            }
        }
    }
    d.truncate(max_len);
    d
}
