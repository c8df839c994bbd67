//! The graph's core, checked on small graphs whose answers can be worked out by hand.

use super::*;

/// 1 -> 2, 1 -> 3, 2 -> 3, 3 -> 1, 4 -> 3, 1 -> 4; 9 only follows itself; 1 -> 2 twice.
fn small(timed: bool) -> Built {
    let src = [1, 1, 2, 3, 4, 1, 9, 1];
    let dst = [2, 3, 3, 1, 3, 4, 9, 2];
    let times = [10, 20, 30, 40, 20, 5, 1, 50];
    build(&src, &dst, timed.then_some(&times[..])).unwrap()
}

#[test]
fn build_drops_repeats_and_self_follows_and_reports_them() {
    let built = small(false);
    assert_eq!(
        (built.duplicates, built.self_follows, built.self_followers),
        (1, 1, vec![9])
    );
    let graph = built.graph;
    assert_eq!(graph.user_ids().unwrap(), vec![1, 2, 3, 4, 9]);
    assert_eq!(graph.num_follows().unwrap(), 6);
    assert_eq!(
        graph.neighbours(1, true, None, None, 0, None).unwrap().0,
        vec![2, 3, 4]
    );
    assert_eq!(
        graph.neighbours(3, false, None, None, 0, None).unwrap().0,
        vec![1, 2, 4]
    );
    assert_eq!(
        graph.neighbours(9, true, None, None, 0, None).unwrap().0,
        Vec::<i64>::new()
    );
    assert_eq!(
        graph.neighbours(7, true, None, None, 0, None).unwrap_err(),
        GraphError::UnknownId { id: 7 }.into()
    );
}

#[test]
fn timed_lists_are_newest_first_within_bounds() {
    let graph = small(true).graph;
    let (ids, times) = graph.neighbours(3, false, None, None, 0, None).unwrap();
    assert_eq!((ids, times), (vec![2, 1, 4], Some(vec![30, 20, 20])));
    let (ids, _) = graph
        .neighbours(3, false, Some(20), Some(30), 1, Some(5))
        .unwrap();
    assert_eq!(ids, vec![4]);
    // A repeated follow keeps its earliest time.
    let (ids, times) = graph.neighbours(1, true, None, None, 0, Some(2)).unwrap();
    assert_eq!((ids, times), (vec![3, 2], Some(vec![20, 10])));
}

#[test]
fn pair_queries() {
    let graph = small(false).graph;
    assert_eq!(
        graph.is_following(&[1, 2, 3, 7], &[4, 1, 1, 1]).unwrap(),
        vec![true, false, true, false]
    );
    assert_eq!(graph.mutual_follows(1).unwrap(), vec![3]);
    assert_eq!(graph.common(1, 2, true).unwrap(), vec![3]);
    assert_eq!(graph.common(3, 4, false).unwrap(), vec![1]);
    assert_eq!(graph.followed_by(1, 3, 1).unwrap(), (vec![2], 2));
}

#[test]
fn suggestions_rank_by_score_then_smaller_id() {
    // 0 follows 1, 2, 3; they follow 10 (three times), 11 (twice), 12 and 13 (once each).
    let src = [0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 3, 3];
    let dst = [1, 2, 3, 10, 11, 10, 11, 12, 0, 10, 1, 13];
    let graph = build(&src, &dst, None).unwrap().graph;
    let (ids, scores) = graph.suggest(0, 20, false, &[]).unwrap();
    assert_eq!(ids, vec![10, 11, 12, 13]);
    assert_eq!(scores, vec![3.0, 2.0, 1.0, 1.0]);
    assert_eq!(graph.suggest(0, 2, false, &[10]).unwrap().0, vec![11, 12]);
    let walk = WalkParams {
        walks: 20,
        walk_length: 6,
        restart_prob: 0.3,
        seed: 5,
        limit: 10,
    };
    let first = graph.random_walk_suggest(0, walk, &[]).unwrap();
    assert_eq!(first, graph.random_walk_suggest(0, walk, &[]).unwrap());
    assert!(first.0.iter().all(|id| [10, 11, 12, 13].contains(id)));
}

#[test]
fn splitmix64_is_the_published_generator() {
    // The first outputs for seed 0 of Vigna's reference splitmix64.
    let mut rng = queries::SplitMix64(0);
    assert_eq!(rng.next(), 0xE220_A839_7B1D_CDAF);
    assert_eq!(rng.next(), 0x6E78_9E6A_A1B9_65F4);
}

#[test]
fn bfs_in_discovery_order_with_limits() {
    let graph = build(&[1, 1, 2, 3, 3, 4, 6], &[3, 2, 4, 4, 5, 6, 1], None)
        .unwrap()
        .graph;
    assert_eq!(
        graph.bfs(1, 3, None, true).unwrap(),
        (vec![1, 2, 3, 4, 5, 6], vec![0, 1, 1, 2, 2, 3])
    );
    assert_eq!(graph.bfs(1, 5, Some(4), true).unwrap().0, vec![1, 2, 3, 4]);
    assert_eq!(graph.bfs(4, 2, None, false).unwrap().0, vec![4, 2, 3, 1]);
}

#[test]
fn updates_are_seen_at_once_and_compaction_keeps_them() {
    let mut graph = small(false).graph;
    assert_eq!(
        graph.follow(&[2, 2, 50, 7], &[1, 1, 2, 7], None).unwrap(),
        2
    );
    assert_eq!(
        graph.neighbours(2, false, None, None, 0, None).unwrap().0,
        vec![1, 50]
    );
    assert_eq!(graph.unfollow(&[1, 1, 99], &[2, 2, 1]).unwrap(), 1);
    assert_eq!(graph.num_follows().unwrap(), 7);
    let before = graph.edges().unwrap();
    graph.compact().unwrap();
    assert_eq!(graph.edges().unwrap(), before);
    assert_eq!(graph.user_ids().unwrap(), vec![1, 2, 3, 4, 7, 9, 50]);
}

#[test]
fn components_and_triangles() {
    let graph = build(&[5, 6, 6, 1, 2, 3, 8], &[6, 5, 7, 2, 3, 1, 8], None)
        .unwrap()
        .graph;
    assert_eq!(graph.components(false).unwrap(), vec![0, 0, 0, 1, 1, 1, 2]);
    assert_eq!(graph.components(true).unwrap(), vec![0, 0, 0, 1, 1, 2, 3]);
    assert_eq!(graph.triangle_count().unwrap(), 1);
    assert_eq!(graph.degree_histogram(true).unwrap(), vec![2, 4, 1]);
}

fn saved(graph: &FollowGraph, name: &str) -> (String, Layout) {
    let path = std::env::temp_dir().join(format!("igcore-graph-{}-{name}", std::process::id()));
    let path = path.to_string_lossy().into_owned();
    graph.save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
    let mut layout = Layout {
        num_users: word(16),
        num_follows: word(24),
        timed: bytes[12] == 1,
        offsets: [0; 10],
        lengths: [0; 10],
        crcs: [0; 10],
        header: bytes[..file::HEADER_SIZE].to_vec(),
    };
    for i in 0..10 {
        layout.offsets[i] = word(40 + 24 * i);
        layout.lengths[i] = word(48 + 24 * i);
        layout.crcs[i] = u32::from_le_bytes(bytes[56 + 24 * i..60 + 24 * i].try_into().unwrap());
    }
    (path, layout)
}

use file::{load, Layout};

#[test]
fn files_round_trip_mapped_or_read() {
    let graph = small(true).graph;
    let (path, layout) = saved(&graph, "round-trip");
    for mmap in [true, false] {
        let loaded = load(&path, layout.clone(), mmap).unwrap();
        assert_eq!(loaded.edges().unwrap(), graph.edges().unwrap());
        assert_eq!(loaded.user_ids().unwrap(), graph.user_ids().unwrap());
    }
    std::fs::remove_file(path).unwrap();
}

#[test]
fn a_corrupted_body_fails_its_check_and_every_query_after() {
    let graph = small(false).graph;
    let (path, layout) = saved(&graph, "corrupt");
    let mut bytes = std::fs::read(&path).unwrap();
    let at = layout.offsets[3]; // the first followee of the first user
    bytes[at] = 0xFF;
    std::fs::write(&path, &bytes).unwrap();
    let loaded = load(&path, layout.clone(), true).unwrap();
    assert!(loaded.verify().is_err());
    assert!(loaded.neighbours(1, true, None, None, 0, None).is_err());
    // The same change with a checksum that matches: the structure check refuses it.
    let mut lying = layout;
    lying.crcs[3] = crc32fast::hash(&bytes[at..at + lying.lengths[3]]);
    let loaded = load(&path, lying, false).unwrap();
    assert_eq!(
        loaded.verify().unwrap_err().to_string(),
        "corrupted: a follow list is out of range, out of order or holds its own user"
    );
    std::fs::remove_file(path).unwrap();
}

#[test]
fn sections_outside_the_file_are_refused_before_use() {
    let graph = small(false).graph;
    let (path, mut layout) = saved(&graph, "outside");
    layout.offsets[5] = usize::MAX - 3;
    assert!(load(&path, layout, true).is_err());
    std::fs::remove_file(path).unwrap();
}
