//! The client's server-side options, parsed in full for the transfer
//! (upstream's `server_options()` is what produces them). An option we do
//! not implement is refused by name, never silently ignored: a client that
//! asked for `--remove-source-files` must not believe it happened.

use oxrsyncd_protocol::setup::SetupOptions;

/// Everything a transfer needs from the client's options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransferOptions {
    /// `--sender`: the client pulls, we send.
    pub we_send: bool,
    pub verbose: u8,
    pub recursive: bool,
    /// `-d`: send directories without recursing.
    pub dirs: bool,
    /// `-R`: paths are sent with their directories.
    pub relative: bool,
    /// `--no-implied-dirs` (with `-R`, below protocol 30).
    pub no_implied_dirs: bool,
    pub preserve_links: bool,
    /// `-L`: follow every symlink.
    pub copy_links: bool,
    /// `-k`: follow symlinks to directories.
    pub copy_dirlinks: bool,
    pub preserve_hard_links: bool,
    pub preserve_perms: bool,
    pub preserve_executability: bool,
    pub preserve_uid: bool,
    pub preserve_gid: bool,
    pub preserve_devices: bool,
    pub preserve_specials: bool,
    pub preserve_times: bool,
    /// `-U`: access times travel with the list and are set on a push.
    pub preserve_atimes: bool,
    /// `-X` (1) or `-XX` (2, which also copies rsync's own `%` attributes):
    /// extended attributes travel with the list (`xattrs.rs`).
    pub preserve_xattrs: u8,
    /// `-A`: POSIX ACLs travel with the list (`acls.rs`); implies `-p`.
    pub preserve_acls: bool,
    pub omit_dir_times: bool,
    pub omit_link_times: bool,
    /// `-c`: whole-file checksums in the file list.
    pub always_checksum: bool,
    pub whole_file: bool,
    pub one_file_system: bool,
    /// `-xx`: mount points are left out, not listed empty.
    pub skip_mount_points: bool,
    pub dry_run: bool,
    pub itemize: bool,
    pub numeric_ids: bool,
    pub list_only: bool,
    pub copy_unsafe_links: bool,
    pub safe_links: bool,
    pub ignore_errors: bool,
    pub compress: bool,
    pub compress_level: Option<i32>,
    pub checksum_choice: Option<String>,
    pub compress_choice: Option<String>,
    /// `--checksum-seed=N` (0: pick one).
    pub checksum_seed: Option<i32>,
    /// `--timeout=N` the client asked for.
    pub timeout: Option<u32>,
    /// `-B N`: block size forced by the client (the generator's business; accepted).
    pub block_size: Option<u32>,
    /// `--files-from`: `-` (the client forwards the list on the socket)
    /// or a file in the module.
    pub files_from: Option<String>,
    pub from0: bool,
    /// The capability letters after `-e.`.
    pub capabilities: String,
    /// The long names of the options given, as `refuse options` matches
    /// them (see `refuse::used_options`).
    pub used: Vec<String>,
    /// `--use-qsort`: the client sorts unstably, which rules out
    /// incremental recursion.
    pub use_qsort: bool,
    /// Delete options are the receiving side's business on a pull; remembered for the filter rules.
    pub delete_mode: bool,
    pub delete_excluded: bool,
    pub prune_empty_dirs: bool,
    pub remove_source_files: bool,
    /// The older `--remove-sent-files`: on a push, only what was sent (and
    /// new symlinks) is confirmed, not what was already up to date
    /// (upstream's `remove_source_files == 2`).
    pub remove_sent_files_only: bool,
    /// `--inplace`: the receiver overwrites its basis as it goes, which
    /// limits the sender's block search.
    pub inplace: bool,
    /// `--append` (1) or `--append-verify` (2): the receiver keeps what it
    /// has and the sender sends only the rest (first pass only).
    pub append_mode: u8,
    /// `-y` count: a new file's basis is a similar file in its directory
    /// (`-yy`: in the `--*-dest` directories too).
    pub fuzzy: u8,
    /// `-q`: a push keeps its notices (such as skipped non-regular files)
    /// to itself.
    pub quiet: bool,
    /// `-K`: on a push, a symlink to a directory where the list has a
    /// directory is kept and used as that directory.
    pub keep_dirlinks: bool,
    /// `--compare-dest`, `--copy-dest`, `--link-dest` (the last kind given
    /// applies to all, as upstream) and their directories, in order.
    pub alt_dest: Option<AltDest>,
    pub basis_dirs: Vec<String>,
    /// `--force`: a push removes a non-empty directory that stands where
    /// a non-directory comes (`--delete` does too).
    pub force_delete: bool,
    /// `-S`: a push leaves holes for runs of zeros (a pull: the client's business).
    pub sparse: bool,
    /// `-C`: leave out what CVS would ignore.
    pub cvs_exclude: bool,
    /// `--bwlimit=N`: send at most N KiB per second.
    pub bwlimit: Option<u64>,
    /// What to do with a requested path that does not exist.
    pub missing_args: MissingArgs,
    /// `-b`: the receiver keeps backups (below protocol 29 this turns
    /// in-place updating off).
    pub make_backups: bool,
    /// `--backup-dir=DIR` (implies `-b`), as the client gave it.
    pub backup_dir: Option<String>,
    /// `--suffix=SUF` (only sent when not the default).
    pub backup_suffix: Option<String>,
    /// `--max-size` / `--min-size` (bytes): files outside are skipped.
    pub max_size: Option<u64>,
    pub min_size: Option<u64>,
    /// `--max-delete=N` (N < 0: no deletions at all).
    pub max_delete: Option<i64>,
    /// `--partial`: an interrupted push keeps what arrived under the
    /// target's name.
    pub partial: bool,
    /// `--partial-dir=DIR`: an interrupted push keeps what arrived in DIR
    /// (relative: beside the file), and the next one starts from it.
    pub partial_dir: Option<String>,
    /// `--delay-updates`: received files wait in the partial dir and all
    /// take their names at the end.
    pub delay_updates: bool,
    /// `--temp-dir=DIR`: where a push's temporary files are made.
    pub temp_dir: Option<String>,
    /// When a push deletes (`--delete-before/-during/-after/-delay`).
    pub delete_timing: DeleteTiming,
    /// Receiver-side choices (a push): `--ignore-existing`, `--existing`,
    /// `-u`, `-I`, `--size-only`.
    pub ignore_existing: bool,
    pub existing_only: bool,
    pub update_only: bool,
    pub ignore_times: bool,
    pub size_only: bool,
    /// Receiver-side options named as the client gave them, for a push to
    /// refuse what it does not implement yet.
    pub receiver_options: Vec<String>,
    /// `--open-noatime`: read files without touching their access time
    /// (the module's `open noatime` has the last word).
    pub open_noatime: bool,
    /// Options given that this build does not implement, by name.
    pub unsupported: Vec<String>,
    /// Filter options given to the daemon itself (`rsync -M--exclude=...`),
    /// in order: they come before the client's rules (server_filters.rs).
    pub server_filters: Vec<(ServerFilter, String)>,
    /// `--usermap` / `--groupmap` (a client's `--chown` arrives as these),
    /// repeated ones joined with commas as upstream joins them.
    pub usermap: Option<String>,
    pub groupmap: Option<String>,
    /// A value upstream's option parser would refuse, with its message
    /// (such as `--max-size=12x is invalid`): the transfer is refused.
    pub invalid: Option<String>,
}

/// A size argument as the client sends it: bytes, or with a K/M/G/T
/// suffix (powers of 1024).
/// When a receiver deletes extraneous files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DeleteTiming {
    /// `--delete` / `--delete-during`: each directory as it is reached.
    #[default]
    During,
    /// `--delete-before`: a pass before any transfer.
    Before,
    /// `--delete-after` / `--delete-delay`: once everything is in.
    After,
}

/// A requested path that does not exist (upstream's `missing_args`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MissingArgs {
    /// An error, as by default.
    #[default]
    Error,
    /// `--ignore-missing-args`: silently left out.
    Ignore,
    /// `--delete-missing-args`: the sender lists it with mode 0, and the
    /// receiver deletes what it has under that name.
    Delete,
}

/// What a push does with a file found unchanged in a `--*-dest` directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AltDest {
    /// `--compare-dest`: nothing (the file is not transferred).
    Compare,
    /// `--copy-dest`: copy it locally.
    Copy,
    /// `--link-dest`: hard-link it.
    Link,
}

/// A filter option on the daemon's own command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerFilter {
    /// `--exclude=PATTERN`
    Exclude,
    /// `--include=PATTERN`
    Include,
    /// `--filter=RULE`
    Rule,
    /// `--exclude-from=FILE`
    ExcludeFrom,
    /// `--include-from=FILE`
    IncludeFrom,
}

/// Long options that take their value as the next argument.
const SEPARATE_VALUE: &[&str] = &[
    "files-from",
    "backup-dir",
    "partial-dir",
    "temp-dir",
    "compare-dest",
    "copy-dest",
    "link-dest",
    "suffix",
    "exclude",
    "include",
    "filter",
    "exclude-from",
    "include-from",
];

/// Long options accepted without effect on the sending side (they shape
/// what the client's receiver does, or only tune logging).
const ACCEPTED_LONG: &[&str] = &[
    "server",
    "no-r",
    "log-format",
    "msgs2stderr",
    "no-msgs2stderr",
    "delete-before",
    "delete-delay",
    "delete-during",
    "del",
    "delete-after",
    "stats",
    "skip-compress",
    "max-alloc",
    "modify-window",
    "omit-dir-times",
    // The zstd worker count (`--zt` is its other name): taken and
    // ignored, as oxrsyncd compresses on the session's own thread, so no
    // client can make the daemon start threads with it.
    "compress-threads",
    "zt",
    "omit-link-times",
];

impl TransferOptions {
    /// Parse the option list (everything before the lone `.`).
    pub fn parse(options: &[String]) -> TransferOptions {
        let mut o = TransferOptions {
            used: crate::transfer::options::refuse::used_options(options),
            ..TransferOptions::default()
        };
        let mut iter = options.iter();
        while let Some(opt) = iter.next() {
            if let Some(long) = opt.strip_prefix("--") {
                let (name, value) = match long.split_once('=') {
                    Some((n, v)) => (n, Some(v)),
                    None => (long, None),
                };
                let value = match value {
                    None if SEPARATE_VALUE.contains(&name) => iter.next().map(String::as_str),
                    v => v,
                };
                o.apply_long(name, value);
            } else if let Some(cluster) = opt.strip_prefix('-') {
                o.apply_short_cluster(cluster);
            } else {
                o.unsupported.push(opt.clone());
            }
        }
        // As upstream's server: a list of names sends directories as named
        // (`-d`), recursing only when `-r` came explicitly.
        if o.files_from.is_some() {
            o.dirs = true;
        }
        // Upstream: --delay-updates waits in ".~tmp~" unless told otherwise;
        // "" or "." is no partial dir; a partial dir implies --partial.
        if o.delay_updates && o.partial_dir.is_none() {
            o.partial_dir = Some(".~tmp~".into());
        }
        o.partial_dir = o.partial_dir.take().filter(|d| !d.is_empty() && d != ".");
        if o.partial_dir.is_some() {
            o.partial = true;
        }
        // Upstream: backups beside their files leave directory times alone
        // (omit_dir_times = -1, "implied").
        if o.make_backups && o.backup_dir.as_deref().is_none_or(str::is_empty) {
            o.omit_dir_times = true;
        }
        o
    }

    fn apply_long(&mut self, name: &str, value: Option<&str>) {
        let number = |v: Option<&str>| v.and_then(|v| v.parse::<i64>().ok());
        match name {
            "sender" => self.we_send = true,
            "use-qsort" => self.use_qsort = true,
            "numeric-ids" => self.numeric_ids = true,
            "list-only" => self.list_only = true,
            "copy-unsafe-links" => self.copy_unsafe_links = true,
            "safe-links" => self.safe_links = true,
            "ignore-errors" => self.ignore_errors = true,
            "specials" => self.preserve_specials = true,
            "no-specials" => self.preserve_specials = false,
            // `-z` spelled long (a stock client bundles it as `z`).
            "compress" => self.compress = true,
            "compress-level" => self.compress_level = number(value).map(|n| n as i32),
            "checksum-choice" | "cc" => self.checksum_choice = value.map(str::to_string),
            "compress-choice" | "zc" => {
                self.compress = true;
                self.compress_choice = value.map(str::to_string);
            }
            // What clients send for a forced zlib / zlibx.
            "old-compress" => {
                self.compress = true;
                self.compress_choice = Some("zlib".into());
            }
            "new-compress" => {
                self.compress = true;
                self.compress_choice = Some("zlibx".into());
            }
            "checksum-seed" => self.checksum_seed = number(value).map(|n| n as i32),
            "timeout" => self.timeout = number(value).map(|n| n.max(0) as u32),
            "files-from" => self.files_from = value.map(str::to_string),
            "no-relative" => self.relative = false,
            "from0" => self.from0 = true,
            "delete" | "delete-during" | "del" => self.delete_mode = true,
            "delete-before" => {
                self.delete_mode = true;
                self.delete_timing = DeleteTiming::Before;
            }
            "delete-after" | "delete-delay" => {
                self.delete_mode = true;
                self.delete_timing = DeleteTiming::After;
            }
            "delete-excluded" => {
                self.delete_mode = true;
                self.delete_excluded = true;
            }
            "remove-source-files" | "remove-sent-files" => {
                self.remove_source_files = true;
                self.remove_sent_files_only = name == "remove-sent-files";
            }
            "inplace" => self.inplace = true,
            // A pushing client says -i this way (upstream's server_options).
            "log-format" => self.itemize |= value.is_some_and(|v| v.contains("%i")),
            "force" => self.force_delete = true,
            "fuzzy" => self.fuzzy = self.fuzzy.saturating_add(1),
            "compare-dest" | "copy-dest" | "link-dest" => {
                self.alt_dest = Some(match name {
                    "compare-dest" => AltDest::Compare,
                    "copy-dest" => AltDest::Copy,
                    _ => AltDest::Link,
                });
                self.basis_dirs.extend(value.map(String::from));
            }
            "keep-dirlinks" => self.keep_dirlinks = true,
            "backup-dir" => {
                self.make_backups = true;
                self.backup_dir = value.map(String::from);
            }
            "suffix" => self.backup_suffix = value.map(String::from),
            "size-only" => self.size_only = true,
            "partial" => self.partial = true,
            "partial-dir" => self.partial_dir = value.map(String::from),
            "delay-updates" => self.delay_updates = true,
            "temp-dir" => self.temp_dir = value.map(String::from).filter(|d| !d.is_empty()),
            "max-size" | "min-size" => {
                let parsed = crate::transfer::options::size_arg::parse_size_arg(value.unwrap_or(""), 'b', name, 0, false);
                match (parsed, name) {
                    (Ok(n), "max-size") => self.max_size = Some(n),
                    (Ok(n), _) => self.min_size = Some(n),
                    (Err(message), _) => self.invalid = Some(message),
                }
            }
            "max-delete" => self.max_delete = number(value),
            "ignore-existing" => self.ignore_existing = true,
            "existing" => self.existing_only = true,
            "bwlimit" => self.bwlimit = number(value).filter(|&n| n > 0).map(|n| n as u64),
            "ignore-missing-args" => self.missing_args = MissingArgs::Ignore,
            "delete-missing-args" => self.missing_args = MissingArgs::Delete,
            // The client repeats --append for --append-verify.
            "append" => self.append_mode = self.append_mode.saturating_add(1).min(2),
            "append-verify" => self.append_mode = 2,
            "no-implied-dirs" => self.no_implied_dirs = true,
            "open-noatime" => self.open_noatime = true,
            "no-open-noatime" => self.open_noatime = false,
            "usermap" | "groupmap" => {
                let slot = if name == "usermap" { &mut self.usermap } else { &mut self.groupmap };
                let value = value.unwrap_or("");
                *slot = Some(match slot.take() {
                    Some(before) => format!("{before},{value}"),
                    None => value.to_string(),
                });
            }
            n if n.starts_with("delete-") => {
                self.delete_mode = true;
                self.receiver_options.push(format!("--{n}"));
            }
            "exclude" | "include" | "filter" | "exclude-from" | "include-from" => {
                let kind = match name {
                    "exclude" => ServerFilter::Exclude,
                    "include" => ServerFilter::Include,
                    "filter" => ServerFilter::Rule,
                    "exclude-from" => ServerFilter::ExcludeFrom,
                    _ => ServerFilter::IncludeFrom,
                };
                self.server_filters.push((kind, value.unwrap_or("").to_string()));
            }
            n if ACCEPTED_LONG.contains(&n) => {}
            other => self.unsupported.push(format!("--{other}")),
        }
    }

    fn apply_short_cluster(&mut self, cluster: &str) {
        for (i, c) in cluster.char_indices() {
            match c {
                'e' => {
                    let value = &cluster[i + 1..];
                    self.capabilities = value.split_once('.').map(|(_, caps)| caps).unwrap_or(value).to_string();
                    return;
                }
                'B' => {
                    let digits: String = cluster[i + 1..].chars().take_while(char::is_ascii_digit).collect();
                    self.block_size = digits.parse().ok();
                    return;
                }
                '@' => return, // --modify-window: the receiver's business
                'v' => self.verbose = self.verbose.saturating_add(1),
                // The receiving side's business (backup, update, sparse, ...), or quiet.
                'q' => self.quiet = true,
                's' => {}
                'u' => self.update_only = true,
                'I' => self.ignore_times = true,
                'K' => self.keep_dirlinks = true,
                'y' => self.fuzzy = self.fuzzy.saturating_add(1),
                'S' => self.sparse = true,
                'b' => self.make_backups = true,
                '0' => self.from0 = true,
                'W' => self.whole_file = true,
                'm' => self.prune_empty_dirs = true,
                'n' => self.dry_run = true,
                'l' => self.preserve_links = true,
                'd' => self.dirs = true,
                'O' => self.omit_dir_times = true,
                'J' => self.omit_link_times = true,
                'L' => self.copy_links = true,
                'k' => self.copy_dirlinks = true,
                'H' => self.preserve_hard_links = true,
                'o' => self.preserve_uid = true,
                'g' => self.preserve_gid = true,
                'D' => {
                    self.preserve_devices = true;
                    self.preserve_specials = true;
                }
                't' => self.preserve_times = true,
                'p' => self.preserve_perms = true,
                'E' => self.preserve_executability = true,
                'r' => self.recursive = true,
                'c' => self.always_checksum = true,
                'R' => self.relative = true,
                'x' => {
                    self.skip_mount_points = self.one_file_system;
                    self.one_file_system = true;
                }
                'z' => self.compress = true,
                'i' => self.itemize = true,
                'C' => self.cvs_exclude = true,
                'U' => self.preserve_atimes = true,
                'N' => self.unsupported.push("--crtimes (-N)".into()),
                'A' => {
                    self.preserve_acls = true;
                    self.preserve_perms = true;
                }
                'X' => self.preserve_xattrs += 1,
                other => self.unsupported.push(format!("-{other}")),
            }
        }
    }

    /// Whether the client announced capability letter `c`.
    pub fn has_capability(&self, c: char) -> bool {
        self.capabilities.contains(c)
    }

    /// The protocol setup's view of these options. One reading of the
    /// client's options decides both the setup and the transfer: two
    /// parsers once disagreed on which options take a value (`-B1e.x`,
    /// `--temp-dir -ze.x` gave the setup other capabilities, compression
    /// or even `--sender` than the transfer saw; found by fuzzing).
    pub fn setup_options(&self) -> SetupOptions {
        SetupOptions {
            we_send: self.we_send,
            capabilities: self.capabilities.clone(),
            compress: self.compress,
            checksum_choice: self.checksum_choice.clone(),
            compress_choice: self.compress_choice.clone(),
            files_from: self.files_from.is_some(),
        }
    }

    /// Whether this session may use incremental recursion: upstream's
    /// `set_allow_inc_recurse` for a server. It needs `-r`,
    /// no `--use-qsort` (its unstable sort would break the per-directory
    /// lists' agreement) and the client's `i` capability (a client run
    /// with `--no-inc-recursive` leaves it out). A receiving server also
    /// refuses it for `--delete-before`/`--delete-after`,
    /// `--delay-updates` and `--prune-empty-dirs`, which need the whole
    /// list first; ours also for `--delete-delay`, whose pass after the
    /// transfer goes over the whole list (upstream keeps a list of what
    /// to delete instead).
    pub fn allow_inc_recurse(&self) -> bool {
        let whole_list_first = !self.we_send
            && ((self.delete_mode && self.delete_timing != DeleteTiming::During) || self.delay_updates || self.prune_empty_dirs);
        self.recursive && !self.use_qsort && self.has_capability('i') && !whole_list_first
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(v: &[&str]) -> SetupOptions {
        parse(v).setup_options()
    }

    #[test]
    fn setup_options_of_a_typical_pull_and_push() {
        let pull = setup(&["--server", "--sender", "-vlogDtpre.iLsfxCIvu"]);
        assert!(pull.we_send && !pull.compress);
        assert_eq!(pull.capabilities, "iLsfxCIvu");
        let push = setup(&[
            "--server",
            "-vlogDtprze.iLsfxCIvu",
            "--compress-choice=zstd",
            "--checksum-choice=md5",
        ]);
        assert!(!push.we_send && push.compress);
        assert_eq!(push.compress_choice.as_deref(), Some("zstd"));
        assert_eq!(push.checksum_choice.as_deref(), Some("md5"));
        assert!(push.has_capability('v'));
        assert_eq!(setup(&["-ze.iLsfxCIvu", "--old-compress"]).compress_choice.as_deref(), Some("zlib"));
        assert_eq!(
            setup(&["-ze.iLsfxCIvu", "--new-compress"]).compress_choice.as_deref(),
            Some("zlibx")
        );
        let old = setup(&["--server", "--sender", "-vlogDtpr"]);
        assert_eq!(old.capabilities, "");
        assert!(!old.has_capability('v'));
    }

    /// The fuzz findings `args-capabilities-split` and
    /// `args-capabilities-separate-value`: a value is never read as options.
    #[test]
    fn setup_never_reads_a_value_as_options() {
        assert_eq!(setup(&["--server", "-B1e.iLsfxCIvu"]).capabilities, "");
        let separate = setup(&["--server", "--temp-dir", "-ze.x", "-e.iLsf"]);
        assert!(!separate.compress);
        assert_eq!(separate.capabilities, "iLsf");
        assert!(!setup(&["--server", "--partial-dir", "--sender"]).we_send);
    }

    #[test]
    fn inc_recurse_like_upstream() {
        let allowed = |v: &[&str]| parse(v).allow_inc_recurse();
        assert!(allowed(&["--server", "--sender", "-vlogDtpre.iLsfxCIvu"]));
        // No -r, --no-inc-recursive (no `i`), --use-qsort, an old client.
        assert!(!allowed(&["--server", "--sender", "-vlogDtpe.iLsfxCIvu"]));
        assert!(!allowed(&["--server", "--sender", "-vlogDtpre.LsfxCIvu"]));
        assert!(!allowed(&["--server", "--sender", "-vlogDtpre.iLsfxCIvu", "--use-qsort"]));
        assert!(!allowed(&["--server", "--sender", "-vlogDtpr"]));
        // A push, and with it --delete during the transfer and -H.
        assert!(allowed(&["--server", "-vlogDtpre.iLsfxCIvu"]));
        assert!(allowed(&["--server", "-vlogDtpre.iLsfxCIvu", "--delete"]));
        assert!(allowed(&["--server", "-vlogHDtpre.iLsfxCIvu", "--delete-during"]));
        // What needs the whole list on the receiving side first.
        for late in ["--delete-before", "--delete-after", "--delete-delay", "--delay-updates", "-m"] {
            assert!(!allowed(&["--server", "-vlogDtpre.iLsfxCIvu", "--delete", late]), "{late}");
        }
        // Those only matter to a receiver.
        assert!(allowed(&["--server", "--sender", "-vlogDtpre.iLsfxCIvu", "--delete-after"]));
    }

    fn parse(v: &[&str]) -> TransferOptions {
        TransferOptions::parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn archive_pull() {
        let o = parse(&["--server", "--sender", "-vlogDtpre.iLsfxCIvu", "--numeric-ids"]);
        assert!(o.we_send && o.recursive && o.preserve_links && o.preserve_uid && o.preserve_gid);
        assert!(o.preserve_devices && o.preserve_specials && o.preserve_times && o.preserve_perms && o.numeric_ids);
        assert_eq!(o.verbose, 1);
        assert_eq!(o.capabilities, "iLsfxCIvu");
        assert!(o.unsupported.is_empty(), "{:?}", o.unsupported);
    }

    #[test]
    fn separate_values_and_numbers() {
        let o = parse(&[
            "--server",
            "--sender",
            "-rtB4096e.iLsfxCIvu",
            "--partial-dir",
            ".partial",
            "--checksum-seed=7",
            "--timeout=30",
            "--open-noatime",
        ]);
        assert_eq!(o.block_size, Some(4096));
        assert_eq!(o.checksum_seed, Some(7));
        assert_eq!(o.timeout, Some(30));
        assert!(o.open_noatime);
        assert!(o.unsupported.is_empty(), "{:?}", o.unsupported);
    }

    #[test]
    fn unimplemented_options_are_named() {
        let o = parse(&["--server", "--sender", "-rAXXe.iLsfxCIvu", "--frobnicate"]);
        assert_eq!(o.unsupported, ["--frobnicate"]);
        assert_eq!(o.preserve_xattrs, 2);
        assert!(o.preserve_acls && o.preserve_perms, "-A implies -p");
        let s = parse(&["--server", "--sender", "-Dre.iLsfxCIvu", "--no-specials"]);
        assert!(s.preserve_devices && !s.preserve_specials);
    }
}
