//! `cargo arbor new NAME --kind app|server|driver`: a new component from the
//! template in `tools/template/KIND`, with a scenario `runtime-configs/NAME.ron` whose `test` section passes as
//! generated.
//!
//! Everything is decided before anything is written: the name is checked
//! (a snake_case identifier, no keyword, nothing of that name yet), every
//! template file is rendered in memory. If writing then fails part-way, what
//! was written is removed, so nothing is ever half-created.
//!
//! The workspace's `members` are globs (`components/*/*`), so a new package
//! is a member by where it is written: `new` never edits the root Cargo.toml.
//! A server's three packages are siblings (`components/servers/NAME`,
//! `NAME_api`, `NAME_client`) because a glob that matches no folder at all
//! is an error to cargo, so the workspace cannot list a deeper server level.

use crate::components::workspace_environment;
use crate::workspace;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// What kind of component to make; each has its own template folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// An application: reads its config, uses Log and Timer.
    App,
    /// A server: its own session interface, a server and a client.
    Server,
    /// A driver: claims I/O ports and an IRQ through its routes.
    Driver,
}

impl Kind {
    /// The template folder under `tools/template/`.
    fn template(self) -> &'static str {
        match self {
            Kind::App => "app",
            Kind::Server => "server",
            Kind::Driver => "driver",
        }
    }

    /// The group folder under `components/`.
    fn group(self) -> &'static str {
        match self {
            Kind::App => "apps",
            Kind::Server => "servers",
            Kind::Driver => "drivers",
        }
    }
}

/// One package the template makes: which template folder it comes from,
/// where it goes (relative to the workspace root) and its package name.
#[derive(Debug, PartialEq, Eq)]
struct Package {
    template: &'static str,
    path: String,
    name: String,
}

/// Everything `new` will create, decided before anything is written.
#[derive(Debug)]
struct Plan {
    /// The folder of the main package (`components/GROUP/NAME`).
    component_dir: String,
    packages: Vec<Package>,
    /// `runtime-configs/NAME.ron`.
    scenario: String,
}

impl Plan {
    fn new(name: &str, kind: Kind) -> Self {
        let component_dir = format!("components/{}/{name}", kind.group());
        let package = |template, path: String, name: String| Package {
            template,
            path,
            name,
        };
        let packages = match kind {
            // Package name == binary name == module name: how `cargo arbor`
            // builds and packs binaries (see archive.rs).
            Kind::App | Kind::Driver => {
                vec![package("component", component_dir.clone(), name.into())]
            }
            Kind::Server => vec![
                package("api", format!("{component_dir}_api"), format!("{name}_api")),
                package("server", component_dir.clone(), name.to_string()),
                package(
                    "client",
                    format!("{component_dir}_client"),
                    format!("{name}_client"),
                ),
            ],
        };
        Plan {
            component_dir,
            packages,
            scenario: format!("runtime-configs/{name}.ron"),
        }
    }
}

/// Words Rust reserves (strict and reserved keywords, edition 2024): a
/// crate by such a name could not be used from code.
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "static", "struct", "super", "trait", "true", "try", "type", "typeof",
    "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Names taken by something other than a package: the built-in crates, and
/// the boot archive's own modules (`config` is every child's config ROM).
const RESERVED: &[&str] = &[
    "std",
    "core",
    "alloc",
    "proc_macro",
    "test",
    "init",
    "config",
    "core_args",
    "kernel",
];

/// Checks that `name` can name a component: lowercase letters, digits and
/// `_`, starting with a letter, and neither a keyword nor reserved.
pub fn validate_name(name: &str) -> Result<(), String> {
    const MAX_LEN: usize = 48;
    let hint =
        "use snake_case: lowercase letters, digits and '_', starting with a letter (e.g. demo_app)";
    if name.is_empty() {
        return Err(format!("the name is empty; {hint}"));
    }
    if name.len() > MAX_LEN {
        return Err(format!(
            "\"{name}\" is longer than {MAX_LEN} characters; pick a shorter name"
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(format!(
            "\"{name}\" does not start with a lowercase letter; {hint}"
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
    {
        return Err(format!("\"{name}\" contains '{bad}'; {hint}"));
    }
    if name.ends_with('_') || name.contains("__") {
        return Err(format!("\"{name}\" has a trailing or doubled '_'; {hint}"));
    }
    if KEYWORDS.contains(&name) {
        return Err(format!("\"{name}\" is a Rust keyword; pick another name"));
    }
    if RESERVED.contains(&name) {
        return Err(format!(
            "\"{name}\" is reserved (a built-in crate or a boot module); pick another name"
        ));
    }
    Ok(())
}

/// The package names in a Cargo.lock (every workspace member and every
/// dependency), with `-` read as `_` since both spell the same crate.
fn locked_packages(lock: &str) -> BTreeSet<String> {
    lock.lines()
        .filter_map(|line| line.trim().strip_prefix("name = "))
        .map(|name| name.trim_matches('"').replace('-', "_"))
        .collect()
}

/// Checks that nothing the plan makes exists yet: no package, binary or
/// dependency by any of its names, no folder or scenario at its paths.
fn check_free(root: &Path, plan: &Plan) -> Result<(), String> {
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap_or_default();
    let packages = locked_packages(&lock);
    let binaries = workspace_environment(root)?.components.unwrap_or_default();
    for package in &plan.packages {
        let name = &package.name;
        if packages.contains(name) {
            return Err(format!(
                "a package named \"{name}\" already exists (in the workspace or among its dependencies); pick another name"
            ));
        }
        if binaries.contains_key(name) {
            return Err(format!(
                "the workspace already builds a binary named \"{name}\"; pick another name"
            ));
        }
    }
    let paths = plan.packages.iter().map(|p| &p.path);
    for path in paths.chain([&plan.scenario]) {
        if root.join(path).exists() {
            return Err(format!("{path} already exists; pick another name"));
        }
    }
    Ok(())
}

/// `name` in CamelCase (`demo_server` → `DemoServer`), for service names.
fn camel_case(name: &str) -> String {
    name.split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// Replaces the template's placeholders: `{{name}}` and `{{Name}}`. Any
/// other `{{...}}` is an error, so a typo in a template cannot slip out.
fn render(text: &str, name: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| "a \"{{\" without \"}}\"".to_string())?;
        match &after[..end] {
            "name" => out.push_str(name),
            "Name" => out.push_str(&camel_case(name)),
            other => return Err(format!("unknown placeholder {{{{{other}}}}}")),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Every file under `dir`, as paths relative to it, sorted.
fn template_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = std::fs::read_dir(&current)
            .map_err(|e| format!("cannot read the template {}: {e}", current.display()))?;
        for entry in entries {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(relative) = path.strip_prefix(dir) {
                found.push(relative.to_path_buf());
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Every file the plan writes (path relative to the root, content).
fn render_all(
    template_root: &Path,
    plan: &Plan,
    name: &str,
) -> Result<Vec<(String, String)>, String> {
    let mut files = Vec::new();
    for package in &plan.packages {
        let dir = template_root.join(package.template);
        for relative in template_files(&dir)? {
            let source = dir.join(&relative);
            let text = std::fs::read_to_string(&source)
                .map_err(|e| format!("cannot read {}: {e}", source.display()))?;
            let text = render(&text, name).map_err(|e| format!("{}: {e}", source.display()))?;
            files.push((format!("{}/{}", package.path, relative.display()), text));
        }
    }
    let source = template_root.join("scenario.ron");
    let text = std::fs::read_to_string(&source)
        .map_err(|e| format!("cannot read {}: {e}", source.display()))?;
    let text = render(&text, name).map_err(|e| format!("{}: {e}", source.display()))?;
    // A template whose scenario does not parse must not reach the user.
    arbor_config::parse_scenario(&text).map_err(|e| {
        format!(
            "the template's scenario does not parse: {}:{e}",
            source.display()
        )
    })?;
    files.push((plan.scenario.clone(), text));
    Ok(files)
}

/// What has been written so far, to undo if a later step fails.
struct Undo<'a> {
    root: &'a Path,
    /// Folders and files created, the outermost ones only.
    created: Vec<PathBuf>,
}

impl Undo<'_> {
    /// Creates `path`'s missing parent folders, remembering the outermost.
    fn create_parents(&mut self, path: &Path) -> Result<(), String> {
        let Some(parent) = path.parent() else {
            return Ok(());
        };
        let mut outermost = None;
        let mut dir = parent;
        while !dir.exists() {
            outermost = Some(dir.to_path_buf());
            match dir.parent() {
                Some(up) => dir = up,
                None => break,
            }
        }
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        self.created.extend(outermost);
        Ok(())
    }

    fn write(&mut self, relative: &str, text: &str) -> Result<(), String> {
        let path = self.root.join(relative);
        self.create_parents(&path)?;
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        if !self.created.iter().any(|dir| path.starts_with(dir)) {
            self.created.push(path);
        }
        Ok(())
    }

    /// Removes everything created.
    fn roll_back(self) {
        for path in self.created.iter().rev() {
            let _ = if path.is_dir() {
                std::fs::remove_dir_all(path)
            } else {
                std::fs::remove_file(path)
            };
        }
    }
}

/// Writes the files; on any failure undoes all of it.
fn create(root: &Path, files: &[(String, String)]) -> Result<(), String> {
    let mut undo = Undo {
        root,
        created: Vec::new(),
    };
    let result = (|| {
        for (path, text) in files {
            undo.write(path, text)?;
        }
        format_sources(root, files);
        // Cargo must accept the workspace as it now is (the new packages are
        // members through the root manifest's globs).
        let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "metadata",
                "--no-deps",
                "--format-version",
                "1",
                "--offline",
            ])
            .current_dir(root)
            .output()
            .map_err(|e| format!("cannot start cargo: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "cargo does not accept the new workspace:\n{}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(())
    })();
    if result.is_err() {
        undo.roll_back();
    }
    result
}

/// Runs rustfmt over the new Rust files: the name's length moves line
/// breaks, and generated code must pass `cargo fmt --check` like any other.
/// Unformatted code still builds, so a missing rustfmt is only a warning.
fn format_sources(root: &Path, files: &[(String, String)]) {
    let sources: Vec<PathBuf> = files
        .iter()
        .filter(|(path, _)| path.ends_with(".rs"))
        .map(|(path, _)| root.join(path))
        .collect();
    let status = Command::new("rustfmt")
        .args(["--edition", "2024"])
        .args(&sources)
        .current_dir(root)
        .status();
    if !status.is_ok_and(|status| status.success()) {
        eprintln!("warning: rustfmt did not format the new sources; run `cargo fmt --all`");
    }
}

/// `cargo arbor new NAME --kind KIND`.
pub fn new_command(name: &str, kind: Kind) -> Result<ExitCode, String> {
    validate_name(name)?;
    let root = workspace::root();
    let plan = Plan::new(name, kind);
    check_free(&root, &plan)?;
    let files = render_all(
        &root.join("tools/template").join(kind.template()),
        &plan,
        name,
    )?;
    create(&root, &files)?;
    // A component whose config check can parse: link its parser into the tool.
    for package in &plan.packages {
        let manifest_path = format!("{}/Cargo.toml", package.path);
        if let Some((_, text)) = files.iter().find(|(path, _)| *path == manifest_path) {
            crate::configs::link_new(&root, &package.name, &package.path, text)?;
        }
    }

    println!("created {} and {}", plan.component_dir, plan.scenario);
    for package in &plan.packages {
        println!("  package {:<24} {}", package.name, package.path);
    }
    println!("(members of the workspace through the globs in its Cargo.toml)\n");
    println!("next:");
    println!("  cargo arbor run {name}      boot it in QEMU (Ctrl-C quits)");
    println!("  cargo arbor test {name}     host unit tests, then the scenario's test section");
    println!("  cargo arbor check {name}    validate the scenario's routes and quotas");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_names_pass() {
        for name in ["demo_app", "a", "rtc2", "my_driver_v2"] {
            assert_eq!(validate_name(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn bad_names_say_why() {
        let cases = [
            ("", "empty"),
            ("Demo", "lowercase letter"),
            ("2fast", "lowercase letter"),
            ("_x", "lowercase letter"),
            ("demo-app", "contains '-'"),
            ("démo", "contains 'é'"),
            ("demo_", "trailing or doubled"),
            ("a__b", "trailing or doubled"),
            ("fn", "keyword"),
            ("gen", "keyword"),
            ("config", "reserved"),
            ("core", "reserved"),
        ];
        for (name, reason) in cases {
            let error = validate_name(name).unwrap_err();
            assert!(error.contains(reason), "{name}: {error}");
        }
        assert!(
            validate_name(&"a".repeat(49))
                .unwrap_err()
                .contains("longer")
        );
    }

    #[test]
    fn existing_packages_binaries_and_scenarios_are_refused() {
        let root = workspace::root();
        for (name, kind) in [
            ("hello", Kind::App),
            ("pit_timer", Kind::Driver),
            ("serde", Kind::App),
        ] {
            let error = check_free(&root, &Plan::new(name, kind)).unwrap_err();
            assert!(
                error.contains(name) && error.contains("pick another"),
                "{error}"
            );
        }
        // A server also makes NAME_api and NAME_client.
        assert!(check_free(&root, &Plan::new("arbor", Kind::Server)).is_err());
        assert!(check_free(&root, &Plan::new("unused_demo_name", Kind::Server)).is_ok());
    }

    #[test]
    fn placeholders_are_replaced_and_unknown_ones_refused() {
        assert_eq!(
            render("{{name}} serves {{Name}}.", "demo_server").unwrap(),
            "demo_server serves DemoServer."
        );
        assert_eq!(render("no placeholders", "x").unwrap(), "no placeholders");
        assert!(render("{{nmae}}", "x").unwrap_err().contains("{{nmae}}"));
        assert!(render("{{name", "x").is_err());
    }

    #[test]
    fn every_template_renders_and_its_scenario_parses() {
        let root = workspace::root().join("tools/template");
        for kind in [Kind::App, Kind::Server, Kind::Driver] {
            let plan = Plan::new("demo_thing", kind);
            let files = render_all(&root.join(kind.template()), &plan, "demo_thing").unwrap();
            assert!(files.iter().all(|(_, text)| !text.contains("{{")));
            for package in &plan.packages {
                let manifest = format!("{}/Cargo.toml", package.path);
                let (_, text) = files.iter().find(|(path, _)| *path == manifest).unwrap();
                assert!(
                    text.contains(&format!("name = \"{}\"", package.name)),
                    "{text}"
                );
            }
            assert!(
                files
                    .iter()
                    .any(|(path, _)| path == "runtime-configs/demo_thing.ron")
            );
        }
    }

    #[test]
    fn every_package_lands_where_the_member_glob_looks() {
        let manifest = std::fs::read_to_string(workspace::root().join("Cargo.toml")).unwrap();
        assert!(manifest.contains("\"components/*/*\""), "{manifest}");
        for kind in [Kind::App, Kind::Server, Kind::Driver] {
            for package in Plan::new("demo_thing", kind).packages {
                let parts: Vec<&str> = package.path.split('/').collect();
                assert_eq!(parts.len(), 3, "{}", package.path);
                assert_eq!(parts[0], "components");
            }
        }
    }

    #[test]
    fn a_failed_step_leaves_nothing_behind() {
        let root = std::env::temp_dir().join(format!("arbor-new-test-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("Cargo.toml"), "not toml [").unwrap();
        let files = vec![
            (
                "components/apps/x/src/main.rs".to_string(),
                "fn main() {}".to_string(),
            ),
            ("runtime-configs/x.ron".to_string(), "()".to_string()),
        ];
        // The root manifest is not a workspace, so cargo refuses it.
        let result = create(&root, &files);
        assert!(result.is_err());
        assert!(!root.join("components").exists());
        assert!(!root.join("runtime-configs").exists());
        assert_eq!(
            std::fs::read_to_string(root.join("Cargo.toml")).unwrap(),
            "not toml ["
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
