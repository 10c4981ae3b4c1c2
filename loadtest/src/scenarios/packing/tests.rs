//! Tests of `packing`: the arithmetic the figures rest on, the reference scores on hand
//! examples, capacity never exceeded by any policy, and runs that repeat.

use super::metrics::{figures, lower_bound, per_node_sums, stranded_share};
use super::policies::{
    first_fit, k8s_sample_size, most_allocated_score, nomad_sample_size, nomad_score, place, Nodes,
    Policy,
};
use super::workload::{Demand, Dim, Workload};

const NODE: Demand = Demand {
    cpu: 4000,
    mem: 16384,
};

fn d(cpu: u64, mem: u64) -> Demand {
    Demand { cpu, mem }
}

#[test]
fn lower_bound_is_the_fuller_dimension_rounded_up() {
    // cpu 6000 / 4000 -> 2 nodes; memory 2000 / 16384 -> 1.
    assert_eq!(lower_bound([d(3000, 1000), d(3000, 1000)], NODE), 2);
    // memory 3 x 12288 = 36864 / 16384 = 2.25 -> 3; cpu 300 -> 1.
    assert_eq!(lower_bound([d(100, 12288); 3], NODE), 3);
    // Exactly full: no rounding up.
    assert_eq!(lower_bound([d(2000, 8192); 4], NODE), 2);
    assert_eq!(lower_bound([], NODE), 0);
}

#[test]
fn nomad_score_on_a_hand_example() {
    // After placing: 3000 of 4000 millicpu, 8192 of 16384 MB -> free 0.25 and 0.5:
    // 20 - (10^0.25 + 10^0.5) = 20 - (1.778279 + 3.162278) = 15.059443.
    let s = nomad_score(NODE, d(3000, 8192));
    assert!((s - 15.059443).abs() < 1e-5, "{s}");
    assert!((nomad_score(NODE, NODE) - 18.0).abs() < 1e-12);
    assert!(nomad_score(NODE, d(0, 0)).abs() < 1e-12);
    // Fuller is better.
    assert!(nomad_score(NODE, d(3500, 8192)) > s);
}

#[test]
fn most_allocated_is_the_mean_allocated_percent() {
    assert!((most_allocated_score(NODE, d(3000, 8192)) - 62.5).abs() < 1e-12);
    assert_eq!(most_allocated_score(NODE, NODE), 100.0);
}

#[test]
fn sample_sizes() {
    assert_eq!(nomad_sample_size(1), 2);
    assert_eq!(nomad_sample_size(4), 2);
    assert_eq!(nomad_sample_size(200), 8);
    assert_eq!(nomad_sample_size(5000), 13);
    assert_eq!(k8s_sample_size(20), 5);
    assert_eq!(k8s_sample_size(200), 20);
    assert_eq!(k8s_sample_size(5000), 500);
}

#[test]
fn first_fit_takes_the_first_node_with_room() {
    let mut nodes = Nodes::new(3, NODE);
    nodes.used[0] = d(3900, 0);
    nodes.used[1] = d(0, 16300);
    assert_eq!(first_fit(&nodes, d(100, 100)), Some(0));
    assert_eq!(first_fit(&nodes, d(200, 100)), Some(2));
    nodes.used[2] = NODE;
    assert_eq!(first_fit(&nodes, d(200, 100)), None);
}

#[test]
fn stranded_room_is_where_the_smallest_shape_no_longer_fits() {
    let smallest = d(100, 256);
    // Node 0: 50 millicpu free, too little: its 8192 MB are stranded. Node 1: empty.
    let sums = [d(3950, 8192), d(0, 0)];
    let share = stranded_share(&sums, NODE, smallest, Dim::Mem);
    assert!((share - 8192.0 / (8192.0 + 16384.0)).abs() < 1e-12);
    assert_eq!(
        stranded_share(&sums, NODE, smallest, Dim::Cpu),
        50.0 / 4050.0
    );
}

#[test]
fn the_workload_fills_what_was_asked() {
    let w = Workload::generate(100, NODE, 0.8, 42).unwrap();
    let total = w.total_demand();
    let share = total.dominant_share(d(NODE.cpu * 100, NODE.mem * 100));
    assert!((0.8..0.82).contains(&share), "{share}");
    assert!(Workload::generate(10, d(1000, 1000), 0.8, 1).is_err());
}

#[test]
fn no_policy_ever_overfills_a_node() {
    // Past full, so every policy meets nodes with no room left.
    for fill in [0.8, 1.3] {
        let w = Workload::generate(60, NODE, fill, 7).unwrap();
        for policy in Policy::ALL {
            let placed = place(policy, &w, 7).unwrap();
            for (n, sum) in per_node_sums(&w, &placed.node_of).iter().enumerate() {
                assert!(
                    sum.fits_in(NODE),
                    "{} fill {fill}: node {n} holds {sum:?}",
                    policy.name()
                );
            }
            let f = figures(&w, &placed);
            assert_eq!(f.overfilled_nodes, 0);
            assert_eq!(f.placed + f.not_placed, w.items.len());
            assert!(f.nodes_used as u64 >= f.lower_bound);
            if fill > 1.0 {
                assert!(f.not_placed > 0, "{}", policy.name());
            }
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let a = Workload::generate(80, NODE, 0.8, 3).unwrap();
    let b = Workload::generate(80, NODE, 0.8, 3).unwrap();
    assert_eq!(a.items, b.items);
    let other = Workload::generate(80, NODE, 0.8, 4).unwrap();
    assert_ne!(a.items, other.items);
    for policy in Policy::ALL {
        let first = place(policy, &a, 3).unwrap();
        let second = place(policy, &b, 3).unwrap();
        assert_eq!(first.node_of, second.node_of, "{}", policy.name());
    }
}
