//! Geometry of the "best score over time" step chart, computed as plain numbers and
//! an SVG path so that the server renders it without JavaScript.

use ascent_domain::views::ScorePoint;

/// Plot area inside the SVG's view box.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    pub width: f64,
    pub height: f64,
    pub left: f64,
    pub right: f64,
    pub top: f64,
    pub bottom: f64,
}

impl Default for Frame {
    fn default() -> Self {
        Frame {
            width: 720.0,
            height: 260.0,
            left: 64.0,
            right: 20.0,
            top: 16.0,
            bottom: 36.0,
        }
    }
}

/// A step chart ready to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct StepChart {
    pub frame: Frame,
    /// The step line: each record holds until the next one, the last until `end`.
    pub path: String,
    /// Dots on the line: (x, y, index of the record). Every record when there are few,
    /// an even selection (always with the latest) when there are many, so a busy phase
    /// does not draw hundreds of dots.
    pub marks: Vec<(f64, f64, usize)>,
    pub x_ticks: Vec<(f64, i64)>,
    pub y_ticks: Vec<(f64, f64)>,
}

/// Lays out records between `start` and `end` (unix seconds); `None` without records.
pub fn step_chart(points: &[ScorePoint], start: i64, end: i64, frame: Frame) -> Option<StepChart> {
    let first = points.first()?;
    let start = start.min(first.at);
    let end = end
        .max(points.iter().map(|p| p.at).max().unwrap_or(start))
        .max(start + 1);
    let (mut low, mut high) = points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.loss), hi.max(p.loss))
        });
    let pad = ((high - low) * 0.1).max(0.05);
    low -= pad;
    high += pad;
    let plot_w = frame.width - frame.left - frame.right;
    let plot_h = frame.height - frame.top - frame.bottom;
    #[allow(clippy::cast_precision_loss)]
    let x = |t: i64| frame.left + (t - start) as f64 / (end - start) as f64 * plot_w;
    let y = |loss: f64| frame.top + (high - loss) / (high - low) * plot_h;

    let mut path = format!("M{:.1},{:.1}", x(first.at), y(first.loss));
    for p in &points[1..] {
        path.push_str(&format!(" H{:.1} V{:.1}", x(p.at), y(p.loss)));
    }
    let marks = mark_indices(points.len(), MAX_MARKS)
        .into_iter()
        .map(|i| (x(points[i].at), y(points[i].loss), i))
        .collect();
    path.push_str(&format!(" H{:.1}", x(end)));

    let y_ticks = nice_ticks(low, high, 4)
        .into_iter()
        .map(|v| (y(v), v))
        .collect();
    let x_ticks = [start, start + (end - start) / 2, end]
        .into_iter()
        .map(|t| (x(t), t))
        .collect();
    Some(StepChart {
        frame,
        path,
        marks,
        x_ticks,
        y_ticks,
    })
}

/// Most dots drawn on a chart.
pub const MAX_MARKS: usize = 40;

/// Which of `count` records get a dot: all when `count <= max`, else `max` spread
/// evenly from the first to the last.
pub fn mark_indices(count: usize, max: usize) -> Vec<usize> {
    if count <= max {
        return (0..count).collect();
    }
    if max < 2 {
        return vec![count - 1];
    }
    (0..max).map(|k| k * (count - 1) / (max - 1)).collect()
}

/// Round tick values covering `[low, high]`, about `count` of them.
fn nice_ticks(low: f64, high: f64, count: u32) -> Vec<f64> {
    let raw = (high - low) / f64::from(count);
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let mut ticks = Vec::new();
    let mut value = (low / step).ceil() * step;
    while value <= high + step * 1e-9 {
        ticks.push(value);
        value += step;
    }
    ticks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(at: i64, loss: f64) -> ScorePoint {
        ScorePoint { at, loss }
    }

    #[test]
    fn no_records_no_chart() {
        assert_eq!(step_chart(&[], 0, 10, Frame::default()), None);
    }

    #[test]
    fn steps_hold_each_record_until_the_next_and_run_to_the_end() {
        let frame = Frame {
            width: 110.0,
            height: 110.0,
            left: 10.0,
            right: 0.0,
            top: 10.0,
            bottom: 0.0,
        };
        let chart = step_chart(&[point(0, 3.0), point(50, 2.0)], 0, 100, frame).expect("chart");
        // y: 3.0 + pad 0.1 at the top, 2.0 - 0.1 at the bottom.
        assert_eq!(chart.marks.len(), 2);
        assert!((chart.marks[0].0 - 10.0).abs() < 1e-9);
        assert_eq!(chart.marks[1].2, 1);
        assert!((chart.marks[1].0 - 60.0).abs() < 1e-9);
        assert!(
            chart.marks[1].1 > chart.marks[0].1,
            "a lower loss sits lower on the chart"
        );
        assert!(chart.path.starts_with("M10.0,"));
        assert!(chart.path.contains(" H60.0 V"));
        assert!(chart.path.ends_with(" H110.0"));
        assert_eq!(chart.x_ticks.first().map(|t| t.1), Some(0));
        assert_eq!(chart.x_ticks.last().map(|t| t.1), Some(100));
    }

    #[test]
    fn many_records_get_a_bounded_even_set_of_dots() {
        assert_eq!(mark_indices(3, 40), vec![0, 1, 2]);
        let picked = mark_indices(307, 40);
        assert_eq!(picked.len(), 40);
        assert_eq!(picked.first(), Some(&0));
        assert_eq!(
            picked.last(),
            Some(&306),
            "the latest record always has its dot"
        );
        assert!(picked.windows(2).all(|w| w[1] > w[0]));
        assert_eq!(mark_indices(5, 1), vec![4]);
    }

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(nice_ticks(1.9, 3.1, 4), vec![2.0, 2.5, 3.0]);
        let ticks = nice_ticks(0.03, 0.97, 4);
        assert_eq!(ticks.first().copied(), Some(0.25));
        assert!(ticks.windows(2).all(|w| w[1] > w[0]));
    }
}
