//! The HPROF converter on Go heap dumps, checked by VisualVM: every
//! `samples/go/dumps/*.godump` (with its executable `*.bin` for global
//! names; and `HEAPDUMP_TEST_GO_DUMP`, a path, if set) is converted and
//! VisualVM's heap library must see heapdump's histogram, total bytes,
//! shallow and retained size of every object, and roots.

mod oracle;

use std::io::BufWriter;
use std::path::PathBuf;

use heapdump_convert::hprof::{self, Plan};
use heapdump_reader::{parse, DumpFile, HeapGraph};
use heapdump_symbols::{Binary, RootNamer};

fn go_dumps() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../samples/go/dumps");
    let mut dumps: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .filter(|path| path.extension().is_some_and(|ext| ext == "godump"))
                .collect()
        })
        .unwrap_or_default();
    if let Some(path) = std::env::var_os("HEAPDUMP_TEST_GO_DUMP") {
        dumps.push(PathBuf::from(path));
    }
    dumps.sort();
    dumps
}

#[test]
fn visualvm_sees_what_heapdump_sees_in_go_dumps() {
    let dumps = go_dumps();
    if dumps.is_empty() {
        eprintln!(
            "\n{bang}\nSKIPPED: no Go dumps in samples/go/dumps/ (they come with the Go \
             reader's samples); set HEAPDUMP_TEST_GO_DUMP=PATH to check one.\n{bang}\n",
            bang = "!".repeat(72)
        );
        return;
    }
    let dir = oracle::temp_dir();
    for path in dumps {
        let label = path.display().to_string();
        let file = DumpFile::open(&path).unwrap();
        let mut dump =
            parse(file.bytes(), &mut |_, _| {}).unwrap_or_else(|err| panic!("{label}: {err}"));
        assert!(
            heapdump_reader::formats::go::extras(&dump).is_some(),
            "{label} is not a Go dump"
        );
        let binary = Some(path.with_extension("bin"))
            .filter(|bin| bin.is_file())
            .map(|bin| Binary::open(bin).unwrap_or_else(|err| panic!("{label}: {err}")));
        let namer = RootNamer::new(&dump, binary.as_ref()).unwrap_or_else(|err| panic!("{err}"));
        // Objects typed from the binary's DWARF, as `heapdump hprof` does.
        let typed = binary.as_ref().and_then(|binary| {
            heapdump_symbols::go::type_objects(&mut dump, binary, namer.load_bias())
        });
        let typed = typed.is_some_and(|stats| stats.typed_objects > 0);
        let graph = HeapGraph::build(dump, &mut |_, _| {});
        let analysis = heapdump_analysis::analyze(&graph);
        let plan = Plan::new(&graph, &namer, &hprof::Options::default());
        let out = dir.join("go.hprof");
        let report = plan
            .write(
                BufWriter::new(std::fs::File::create(&out).unwrap()),
                &mut |_, _| {},
            )
            .unwrap();
        let bytes = std::fs::read(&out).unwrap();
        oracle::check_record_layout(&oracle::hprof_records(&bytes), 1 << 20);
        assert!(report.threads > 0, "{label}: goroutines become threads");
        let Some(view) = oracle::visualvm(&out, 200, true) else {
            break;
        };
        oracle::compare(&label, &graph, &plan, &report, &analysis, &view);
        assert!(
            view.roots.get("Java frame").copied().unwrap_or(0) > 0,
            "{label}: goroutine frames hold objects"
        );
        if binary.is_some() {
            // Globals are static fields named after their symbols.
            let mut statics = Vec::new();
            plan.for_each_static(&mut |class, field, _| {
                if class.starts_with("globals.") {
                    statics.push(field.to_owned());
                }
            });
            for global in ["main.cache", "main.listHead", "main.treeRoot", "main.cycle"] {
                assert!(
                    statics.iter().any(|name| name == global),
                    "{label}: no static field {global} in {statics:?}"
                );
            }
        }
        if typed {
            // Go types are classes, with the fields named as in the source.
            let facts: serde_json::Value =
                serde_json::from_slice(&std::fs::read(path.with_extension("facts.json")).unwrap())
                    .unwrap();
            let entries = facts["cache_entries"].as_u64().unwrap();
            for (class, count, fields) in [
                ("main.Entry", entries, &["ID", "Payload"][..]),
                (
                    "main.Node",
                    facts["list_len"].as_u64().unwrap(),
                    &["Value", "Next"][..],
                ),
            ] {
                let seen = view.classes.get(class).map(|(count, _, _)| *count);
                assert_eq!(seen, Some(count), "{label}: VisualVM's {class} instances");
                let names = view.fields.get(class).cloned().unwrap_or_default();
                for field in fields {
                    assert!(
                        names.iter().any(|name| name == field),
                        "{label}: {class} has no field {field}: {names:?}"
                    );
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
