//! A ready-queue over a dependency graph, in the manner of cargo's early
//! DependencyQueue: `dequeue` hands out any item whose dependencies are all
//! finished, `finish` releases its dependents. Both are O(1) per edge.

use std::collections::VecDeque;

/// Items are indexes `0..n`.
#[derive(Debug)]
pub struct DependencyQueue {
    /// Unfinished dependencies of each item; counts down as they finish.
    remaining: Vec<usize>,
    /// The items waiting on each item; fixed after `new`.
    dependents: Vec<Vec<usize>>,
    /// Items with no unfinished dependency, in the order they became ready.
    ready: VecDeque<usize>,
}

impl DependencyQueue {
    /// `edges` are (before, after) pairs: `after` waits for `before`. Returns
    /// `None` when the edges hold a cycle.
    pub fn new(n: usize, edges: &[(usize, usize)]) -> Option<Self> {
        let mut remaining = vec![0; n];
        let mut dependents = vec![Vec::new(); n];
        for &(before, after) in edges {
            remaining[after] += 1;
            dependents[before].push(after);
        }
        // Kahn's algorithm on a copy proves the graph acyclic before anything runs.
        let mut rem = remaining.clone();
        let mut stack: Vec<usize> = (0..n).filter(|&i| rem[i] == 0).collect();
        let mut seen = 0;
        while let Some(i) = stack.pop() {
            seen += 1;
            for &d in &dependents[i] {
                rem[d] -= 1;
                if rem[d] == 0 {
                    stack.push(d);
                }
            }
        }
        if seen != n {
            return None;
        }
        let ready = (0..n).filter(|&i| remaining[i] == 0).collect();
        Some(DependencyQueue {
            remaining,
            dependents,
            ready,
        })
    }

    /// Any item whose dependencies are all finished.
    pub fn dequeue(&mut self) -> Option<usize> {
        self.ready.pop_front()
    }

    /// Mark `i` finished, making dependents ready when it was their last wait.
    pub fn finish(&mut self, i: usize) {
        for k in 0..self.dependents[i].len() {
            let d = self.dependents[i][k];
            self.remaining[d] -= 1;
            if self.remaining[d] == 0 {
                self.ready.push_back(d);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_come_out_only_after_their_dependencies() {
        // 0 -> 1 -> 3, 0 -> 2 -> 3
        let mut q = DependencyQueue::new(4, &[(0, 1), (0, 2), (1, 3), (2, 3)]).unwrap();
        assert_eq!(q.dequeue(), Some(0));
        assert_eq!(q.dequeue(), None);
        q.finish(0);
        assert_eq!(q.dequeue(), Some(1));
        assert_eq!(q.dequeue(), Some(2));
        q.finish(1);
        assert_eq!(q.dequeue(), None);
        q.finish(2);
        assert_eq!(q.dequeue(), Some(3));
    }

    #[test]
    fn a_cycle_is_refused() {
        assert!(DependencyQueue::new(2, &[(0, 1), (1, 0)]).is_none());
    }
}
