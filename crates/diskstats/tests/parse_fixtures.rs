//! The parser on captured `/proc/diskstats` files of every line length: 7 and 14 tokens (2.6.18),
//! 14 (4.14, the lab report's sample of /proc/diskstats, its listing 3.1), 18 (4.19, discards) and
//! 20 (6.18, flushes), plus malformed lines.

use diskstats::parse::{Counters, Layout, ParseError, line_name, parse_line};

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn lines(name: &str) -> Vec<String> {
    fixture(name).lines().map(str::to_owned).collect()
}

#[test]
fn kernel_2_6_disks_have_14_tokens_and_partitions_7() {
    let l = lines("diskstats-2.6.18.txt");
    let hda = parse_line(&l[0]).unwrap();
    assert_eq!(hda.layout, Layout::Classic);
    assert_eq!((hda.major, hda.minor, hda.name), (3, 0, "hda"));
    assert_eq!(
        hda.counters,
        Counters {
            rd_ios: 446216,
            rd_merges: 784926,
            rd_sectors: 9550688,
            rd_ticks: 4382310,
            wr_ios: 424847,
            wr_merges: 312726,
            wr_sectors: 5922052,
            wr_ticks: 19310380,
            ios_pgr: 0,
            tot_ticks: 3376340,
            rq_ticks: 23705160,
            ..Counters::default()
        }
    );
    // Partition lines: reads, sectors read, writes, sectors written; the rest is 0.
    let hda1 = parse_line(&l[1]).unwrap();
    assert_eq!(hda1.layout, Layout::Legacy7);
    assert_eq!((hda1.major, hda1.minor, hda1.name), (3, 1, "hda1"));
    assert_eq!(
        hda1.counters,
        Counters {
            rd_ios: 35486,
            rd_sectors: 38030,
            wr_ios: 38030,
            wr_sectors: 38030,
            ..Counters::default()
        }
    );
    let sda1 = parse_line(&l[4]).unwrap();
    assert_eq!(sda1.layout, Layout::Legacy7);
    assert_eq!(
        (
            sda1.counters.rd_ios,
            sda1.counters.rd_sectors,
            sda1.counters.wr_ios,
            sda1.counters.wr_sectors
        ),
        (1420, 12216, 102, 816)
    );
    for line in &l {
        parse_line(line).unwrap();
    }
}

#[test]
fn the_lab_reports_own_lines_parse_with_32_bit_tick_fields() {
    let l = lines("diskstats-4.14-seed.txt");
    let vda = parse_line(&l[0]).unwrap();
    assert_eq!(vda.layout, Layout::Classic);
    assert_eq!((vda.major, vda.minor, vda.name), (253, 0, "vda"));
    let c = vda.counters;
    assert_eq!((c.rd_ios, c.rd_merges, c.rd_sectors), (31410, 806, 1020922));
    // Near 2^32: these are the fields that wrap.
    assert_eq!((c.rd_ticks, c.wr_ticks), (2_564_596_768, 3_579_730_636));
    assert_eq!(
        (c.wr_ios, c.wr_merges, c.wr_sectors),
        (1465561, 1382324, 54703840)
    );
    assert_eq!((c.ios_pgr, c.tot_ticks, c.rq_ticks), (0, 7229708, 40955272));
    assert_eq!((c.dc_ios, c.dc_sectors, c.fl_ios, c.fl_ticks), (0, 0, 0, 0));
    let vda1 = parse_line(&l[1]).unwrap();
    assert_eq!(vda1.name, "vda1");
    assert_eq!(vda1.counters.rd_ticks, 2_564_547_860);
    for line in &l {
        assert_eq!(parse_line(line).unwrap().layout, Layout::Classic);
    }
}

#[test]
fn kernel_4_19_lines_add_the_discard_fields() {
    let l = lines("diskstats-4.19-discard.txt");
    let sda = parse_line(&l[0]).unwrap();
    assert_eq!(sda.layout, Layout::Discard);
    let c = sda.counters;
    assert_eq!((c.rd_ios, c.wr_ios, c.rq_ticks), (91245, 312876, 1141280));
    assert_eq!(
        (c.dc_ios, c.dc_merges, c.dc_sectors, c.dc_ticks),
        (1201, 0, 29460480, 532)
    );
    assert_eq!((c.fl_ios, c.fl_ticks), (0, 0), "no flush fields before 5.5");
    let dm = parse_line(&l[2]).unwrap();
    assert_eq!((dm.major, dm.minor, dm.name), (253, 0, "dm-0"));
    assert_eq!(dm.counters.dc_ticks, 540);
}

#[test]
fn kernel_6_lines_have_all_20_tokens_and_field_11_is_the_sum_of_the_times() {
    let l = lines("diskstats-6.18-virtio.txt");
    assert_eq!(l.len(), 10);
    let mut names = Vec::new();
    for line in &l {
        let d = parse_line(line).unwrap();
        assert_eq!(d.layout, Layout::Flush, "{line}");
        assert_eq!(line_name(line), Some(d.name));
        names.push(d.name.to_owned());
        // Since 5.x, field 11 is (read + write + discard + flush ns) / 1e6, so it equals the
        // sum of the four ms fields up to truncation (iostats.rst; genhd.c).
        let c = d.counters;
        let sum = c.rd_ticks as i64 + c.wr_ticks as i64 + c.dc_ticks as i64 + c.fl_ticks as i64;
        assert!((c.rq_ticks as i64 - sum).abs() <= 4, "{line}");
    }
    assert_eq!(names[0], "loop0");
    assert!(names.contains(&"vda".to_owned()));
    let vda = parse_line(l.iter().find(|l| l.contains(" vda ")).unwrap()).unwrap();
    let c = vda.counters;
    assert_eq!((vda.major, vda.minor), (254, 0));
    assert_eq!(
        (c.rd_ios, c.rd_merges, c.rd_sectors, c.rd_ticks),
        (431084, 30598, 20227114, 672939)
    );
    assert_eq!(
        (c.wr_ios, c.wr_merges, c.wr_sectors, c.wr_ticks),
        (36343, 95020, 43345728, 566989)
    );
    assert_eq!((c.ios_pgr, c.tot_ticks, c.rq_ticks), (0, 79836, 1266189));
    assert_eq!(
        (c.dc_ios, c.dc_merges, c.dc_sectors, c.dc_ticks),
        (16693, 93, 11032880, 22323)
    );
    assert_eq!((c.fl_ios, c.fl_ticks), (839, 3937));
}

#[test]
fn lines_of_other_lengths_and_bad_numbers_are_errors() {
    assert_eq!(parse_line(""), Err(ParseError::TokenCount(0)));
    assert_eq!(
        parse_line("8 0 sda 1 2 3 4 5 6 7 8 9"),
        Err(ParseError::TokenCount(12))
    );
    assert_eq!(parse_line("8 0 sda 1 2 3"), Err(ParseError::TokenCount(6)));
    let err = parse_line("8 0 sda 1 2 x 4 5 6 7 8 9 10 11").unwrap_err();
    assert_eq!(
        err,
        ParseError::Number {
            index: 6,
            what: "sectors read",
            token: "x".into()
        }
    );
    assert!(err.to_string().contains("sectors read"), "{err}");
    assert!(parse_line("x 0 sda 1 2 3 4 5 6 7 8 9 10 11").is_err());
    assert!(parse_line("8 0 sda1 1 2 -3 4").is_err());
    // 15 to 17 tokens (a kernel between the documented formats) read as the classic fields;
    // more than 20 (a future kernel) keep the 17 known ones.
    let d = parse_line("8 0 sda 1 2 3 4 5 6 7 8 9 10 11 12 13").unwrap();
    assert_eq!(
        (d.layout, d.counters.rq_ticks, d.counters.dc_ios),
        (Layout::Classic, 11, 0)
    );
    let d = parse_line("8 0 sda 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19").unwrap();
    assert_eq!((d.layout, d.counters.fl_ticks), (Layout::Flush, 17));
    // Tabs and repeated spaces are separators too.
    let d = parse_line("\t8\t0  sdz \t1 2 3 4 5 6 7 8 9 10 11").unwrap();
    assert_eq!((d.name, d.counters.rq_ticks), ("sdz", 11));
}
