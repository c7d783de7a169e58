//! The corruption test: >= 1000 corrupted staged images and malformed commands, each
//! refused (report Rejected, nonzero code) with no write to the destination, the old app
//! still booting byte-exact.

#[test]
fn corrupted_updates_are_refused_before_any_destination_write() {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).min(2);
    let r = sim::reject::run(0x5EED_2024, 1, threads);
    println!("{}\n{}", r.line(), r.info());
    assert!(r.mutants >= 1000, "{}", r.mutants);
    assert_eq!(r.wrote_destination, 0, "{:#?}", r.failures);
    assert_eq!(r.old_app_lost, 0, "{:#?}", r.failures);
    assert_eq!(r.refused, r.mutants, "{:#?}", r.failures);
    // Every class is represented.
    assert!(r.classes.len() >= 20, "{:?}", r.classes);
}
