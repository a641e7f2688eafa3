//! Geometry of the charts, computed as plain numbers and SVG paths so that the server
//! renders them without JavaScript: a phase's best score over time (a step line with
//! the number of submissions scored), and the scaling curve across phases (best loss
//! against the parameter cap, on a log scale).

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
    /// Decimals that write every y tick exactly.
    pub y_decimals: usize,
    /// Submissions scored when each record was set, above its step: only where the
    /// number fits without touching another (index of the record).
    pub counts: Vec<Label<usize>>,
    /// The number scored by now, where the line ends.
    pub total: Label<u64>,
}

/// A text placed on a chart: `x`, `y` of its baseline and which end `x` is at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Label<T> {
    pub x: f64,
    pub y: f64,
    pub anchor: Anchor,
    pub value: T,
}

/// SVG `text-anchor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    Start,
    Middle,
    End,
}

impl Anchor {
    pub fn as_str(self) -> &'static str {
        match self {
            Anchor::Start => "start",
            Anchor::Middle => "middle",
            Anchor::End => "end",
        }
    }
}

/// Width of a character of the charts' small labels (11 px, proportional digits), in
/// view box units; an estimate on the safe side, for keeping labels apart.
const CHAR_WIDTH: f64 = 6.6;
/// Height of a small label above its baseline.
const LABEL_HEIGHT: f64 = 11.0;

/// The box a label covers: (left, top, right, bottom).
fn label_box(x: f64, y: f64, anchor: Anchor, chars: usize) -> (f64, f64, f64, f64) {
    #[allow(clippy::cast_precision_loss)]
    let width = chars as f64 * CHAR_WIDTH;
    let left = match anchor {
        Anchor::Start => x,
        Anchor::Middle => x - width / 2.0,
        Anchor::End => x - width,
    };
    (left, y - LABEL_HEIGHT, left + width, y)
}

fn overlaps(a: (f64, f64, f64, f64), b: (f64, f64, f64, f64)) -> bool {
    const GAP: f64 = 3.0;
    a.0 < b.2 + GAP && b.0 < a.2 + GAP && a.1 < b.3 + GAP && b.1 < a.3 + GAP
}

/// The text of the count at the end of the step line.
pub fn total_text(scored: u64) -> String {
    format!("{scored} scored")
}

/// Lays out records between `start` and `end` (unix seconds), with `scored` the number
/// of the phase's submissions scored by now; `None` without records.
pub fn step_chart(
    points: &[ScorePoint],
    scored: u64,
    start: i64,
    end: i64,
    frame: Frame,
) -> Option<StepChart> {
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
    let marks: Vec<(f64, f64, usize)> = mark_indices(points.len(), MAX_MARKS)
        .into_iter()
        .map(|i| (x(points[i].at), y(points[i].loss), i))
        .collect();
    path.push_str(&format!(" H{:.1}", x(end)));

    // The total sits on the end of the line. Each record's count goes just above its
    // step, right of its dot: nothing of the line is there, since later records are
    // lower. Latest first, so the newest numbers win when they crowd.
    let last = points.last().unwrap_or(first);
    let total = Label {
        x: x(end),
        y: y(last.loss) - 7.0,
        anchor: Anchor::End,
        value: scored,
    };
    let plot_right = frame.width - frame.right;
    let mut taken = vec![label_box(
        total.x,
        total.y,
        total.anchor,
        total_text(scored).len(),
    )];
    let mut counts = Vec::new();
    for &(mx, my, i) in marks.iter().rev() {
        let label = Label {
            x: mx + 5.0,
            y: my - 6.0,
            anchor: Anchor::Start,
            value: i,
        };
        let area = label_box(
            label.x,
            label.y,
            label.anchor,
            points[i].scored_so_far.to_string().len(),
        );
        if area.2 <= plot_right && !taken.iter().any(|t| overlaps(*t, area)) {
            taken.push(area);
            counts.push(label);
        }
    }
    counts.reverse();

    let y_values = nice_ticks(low, high, Y_TICKS);
    let y_decimals = tick_decimals(&y_values);
    let y_ticks = y_values.into_iter().map(|v| (y(v), v)).collect();
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
        y_decimals,
        counts,
        total,
    })
}

/// A phase on the scaling chart: its parameter cap and its best loss, if it has one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PhaseCap {
    pub phase: u8,
    pub max_parameters: u64,
    pub best_loss: Option<f64>,
}

/// A phase's cap on the scaling chart: a guide line from its label down to the axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CapGuide {
    pub x: f64,
    pub phase: u8,
    pub max_parameters: u64,
    /// Whether its label fits (labels too close to a neighbour's are left out).
    pub labelled: bool,
}

/// A phase with a best loss on the scaling chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CapPoint {
    pub x: f64,
    pub y: f64,
    pub phase: u8,
    pub max_parameters: u64,
    pub loss: f64,
}

/// The scaling curve ready to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalingChart {
    pub frame: Frame,
    /// Every phase, by cap.
    pub caps: Vec<CapGuide>,
    /// The phases with a best loss, by cap.
    pub points: Vec<CapPoint>,
    /// The line through the points; `None` with fewer than two.
    pub path: Option<String>,
    /// Parameter counts on the log axis: (x, count).
    pub x_ticks: Vec<(f64, f64)>,
    /// Losses on the y axis; empty when no phase has a score yet.
    pub y_ticks: Vec<(f64, f64)>,
    /// Decimals that write every y tick exactly.
    pub y_decimals: usize,
}

impl Default for ScalingChart {
    fn default() -> Self {
        ScalingChart {
            frame: Frame::scaling(),
            caps: Vec::new(),
            points: Vec::new(),
            path: None,
            x_ticks: Vec::new(),
            y_ticks: Vec::new(),
            y_decimals: 0,
        }
    }
}

impl Frame {
    /// The scaling chart's frame: room above for the phase labels (two lines) and below
    /// for the axis labels and title.
    pub fn scaling() -> Frame {
        Frame {
            width: 720.0,
            height: 320.0,
            left: 64.0,
            right: 24.0,
            top: 44.0,
            bottom: 52.0,
        }
    }
}

/// The label lines of a phase's cap guide: "Phase 3" over "400K".
pub fn cap_label_chars(phase: u8, cap_text: &str) -> usize {
    format!("Phase {phase}").len().max(cap_text.len())
}

/// Lays out the phases' best losses against their caps, x on a log10 scale; `None`
/// without a phase with a positive cap. `cap_text` formats a cap for its label (only
/// its length is used here, to keep labels apart).
pub fn scaling_chart(
    phases: &[PhaseCap],
    cap_text: impl Fn(u64) -> String,
    frame: Frame,
) -> Option<ScalingChart> {
    let mut phases: Vec<PhaseCap> = phases
        .iter()
        .copied()
        .filter(|p| p.max_parameters > 0)
        .collect();
    phases.sort_by_key(|p| (p.max_parameters, p.phase));
    #[allow(clippy::cast_precision_loss)]
    let log = |count: u64| (count as f64).log10();
    let low_cap = log(phases.first()?.max_parameters);
    let high_cap = log(phases.last()?.max_parameters);
    // A margin of a fraction of the span (half a decade for a single cap), so the
    // outer guides and their labels stay inside.
    let margin = if high_cap > low_cap {
        ((high_cap - low_cap) * 0.08).max(0.12)
    } else {
        0.5
    };
    let (low, high) = (low_cap - margin, high_cap + margin);
    let plot_w = frame.width - frame.left - frame.right;
    let plot_h = frame.height - frame.top - frame.bottom;
    let x = |log_value: f64| frame.left + (log_value - low) / (high - low) * plot_w;

    let mut caps = Vec::with_capacity(phases.len());
    let mut last_box: Option<(f64, f64, f64, f64)> = None;
    for p in &phases {
        let at = x(log(p.max_parameters));
        let chars = cap_label_chars(p.phase, &cap_text(p.max_parameters));
        let area = label_box(at, frame.top - 6.0, Anchor::Middle, chars);
        let labelled = last_box.is_none_or(|b| !overlaps(b, area));
        if labelled {
            last_box = Some(area);
        }
        caps.push(CapGuide {
            x: at,
            phase: p.phase,
            max_parameters: p.max_parameters,
            labelled,
        });
    }

    let x_ticks = log_ticks(10f64.powf(low), 10f64.powf(high))
        .into_iter()
        .map(|v| (x(v.log10()), v))
        .collect();

    let scored: Vec<(&PhaseCap, f64)> = phases
        .iter()
        .filter_map(|p| p.best_loss.filter(|l| l.is_finite()).map(|l| (p, l)))
        .collect();
    if scored.is_empty() {
        return Some(ScalingChart {
            frame,
            caps,
            x_ticks,
            ..ScalingChart::default()
        });
    }
    let (mut lo, mut hi) = scored
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (_, l)| {
            (lo.min(*l), hi.max(*l))
        });
    let pad = ((hi - lo) * 0.12).max(0.05);
    lo -= pad;
    hi += pad;
    let y = |loss: f64| frame.top + (hi - loss) / (hi - lo) * plot_h;
    let points: Vec<CapPoint> = scored
        .iter()
        .map(|(p, loss)| CapPoint {
            x: x(log(p.max_parameters)),
            y: y(*loss),
            phase: p.phase,
            max_parameters: p.max_parameters,
            loss: *loss,
        })
        .collect();
    let path = (points.len() >= 2).then(|| {
        points
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{}{:.1},{:.1}", if i == 0 { "M" } else { " L" }, p.x, p.y))
            .collect::<String>()
    });
    let y_values = nice_ticks(lo, hi, Y_TICKS);
    let y_decimals = tick_decimals(&y_values);
    let y_ticks = y_values.into_iter().map(|v| (y(v), v)).collect();
    Some(ScalingChart {
        frame,
        caps,
        points,
        path,
        x_ticks,
        y_ticks,
        y_decimals,
    })
}

/// Ticks of a log axis covering `[low, high]` (both positive): the powers of ten inside,
/// with their 2× and 5× when fewer than two powers of ten fall inside; a single round
/// value in the middle when even those miss.
pub fn log_ticks(low: f64, high: f64) -> Vec<f64> {
    if !(low > 0.0 && high >= low && high.is_finite()) {
        return Vec::new();
    }
    let first = low.log10().floor() as i32;
    let last = high.log10().ceil() as i32;
    let inside = |v: &f64| *v >= low * (1.0 - 1e-9) && *v <= high * (1.0 + 1e-9);
    let decades: Vec<f64> = (first..=last)
        .map(|e| 10f64.powi(e))
        .filter(inside)
        .collect();
    if decades.len() >= 2 {
        return decades;
    }
    let finer: Vec<f64> = (first..=last)
        .flat_map(|e| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(e)))
        .filter(inside)
        .collect();
    if finer.is_empty() {
        let middle = (low * high).sqrt();
        let magnitude = 10f64.powi(middle.log10().floor() as i32);
        return vec![(middle / magnitude).round() * magnitude];
    }
    finer
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

/// A y axis's loss step is the first round step of at least its range over this.
const Y_TICKS: u32 = 6;

/// The fewest decimals (one at least, at most six) that write each tick exactly, so a
/// tick at 3.375 does not read "3.38".
pub fn tick_decimals(ticks: &[f64]) -> usize {
    (1..=6)
        .find(|&d| {
            let scale = 10f64.powi(d as i32);
            ticks
                .iter()
                .all(|v| ((v * scale).round() / scale - v).abs() < 1e-9 * v.abs().max(1.0))
        })
        .unwrap_or(6)
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
        ScorePoint {
            at,
            loss,
            scored_so_far: 1,
        }
    }

    fn record(at: i64, loss: f64, scored_so_far: u64) -> ScorePoint {
        ScorePoint {
            at,
            loss,
            scored_so_far,
        }
    }

    #[test]
    fn no_records_no_chart() {
        assert_eq!(step_chart(&[], 0, 0, 10, Frame::default()), None);
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
        let chart = step_chart(&[point(0, 3.0), point(50, 2.0)], 2, 0, 100, frame).expect("chart");
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

    #[test]
    fn each_record_shows_the_submissions_scored_by_then_and_the_line_ends_with_the_total() {
        let records = [record(0, 3.0, 1), record(400, 2.5, 4), record(800, 2.0, 12)];
        let chart = step_chart(&records, 19, 0, 1000, Frame::default()).expect("chart");
        let counted: Vec<usize> = chart.counts.iter().map(|l| l.value).collect();
        assert_eq!(counted, [0, 1, 2], "room for every count");
        for label in &chart.counts {
            let (mx, my, _) = chart.marks[label.value];
            assert!(label.x > mx && label.y < my, "above and right of its dot");
            assert_eq!(label.anchor, Anchor::Start);
        }
        let f = chart.frame;
        assert_eq!(chart.total.value, 19);
        assert!(
            (chart.total.x - (f.width - f.right)).abs() < 1e-9,
            "at the line's end"
        );
        assert_eq!(chart.total.anchor, Anchor::End);
        assert_eq!(total_text(19), "19 scored");
    }

    #[test]
    fn crowded_counts_are_thinned_without_overlap_and_the_latest_kept() {
        // A record every second for a minute, on an axis of a day: dots almost touch.
        let records: Vec<ScorePoint> = (0..30)
            .map(|i| record(i, 3.0 - 0.001 * i as f64, 100 + i as u64))
            .collect();
        let chart = step_chart(&records, 500, 0, 86_400, Frame::default()).expect("chart");
        assert!(!chart.counts.is_empty());
        assert!(chart.counts.len() < 30, "not every count fits");
        let boxes: Vec<_> = chart
            .counts
            .iter()
            .map(|l| label_box(l.x, l.y, l.anchor, 3))
            .collect();
        for (i, a) in boxes.iter().enumerate() {
            for b in &boxes[i + 1..] {
                assert!(!overlaps(*a, *b), "{a:?} and {b:?} overlap");
            }
        }
        assert!(chart.counts.windows(2).all(|w| w[0].value < w[1].value));
    }

    #[test]
    fn log_ticks_are_powers_of_ten_or_finer_on_short_spans() {
        // The demo's caps, 100K to 6.4M, with margins: two powers of ten inside.
        assert_eq!(log_ticks(7.0e4, 9.0e6), vec![1.0e5, 1.0e6]);
        // The real preset's, 0.5B to 1.4T.
        assert_eq!(
            log_ticks(3.5e8, 2.0e12),
            vec![1.0e9, 1.0e10, 1.0e11, 1.0e12]
        );
        // Less than a decade: 1, 2 and 5 times the powers of ten.
        assert_eq!(log_ticks(3.0e4, 3.0e5), vec![5.0e4, 1.0e5, 2.0e5]);
        // Narrower still: one round value.
        assert_eq!(log_ticks(3.0e5, 4.0e5), vec![3.0e5]);
        assert!(log_ticks(0.0, 10.0).is_empty());
        assert!(log_ticks(10.0, 1.0).is_empty());
    }

    fn demo_caps(losses: [Option<f64>; 7]) -> Vec<PhaseCap> {
        (0..7u8)
            .map(|i| PhaseCap {
                phase: i + 1,
                max_parameters: 100_000 << i,
                best_loss: losses[usize::from(i)],
            })
            .collect()
    }

    fn text(cap: u64) -> String {
        format!("{}K", cap / 1000)
    }

    #[test]
    fn caps_sit_on_a_log_scale_and_only_scored_phases_get_a_point() {
        let phases = demo_caps([Some(3.4), Some(2.9), None, None, None, None, None]);
        let chart = scaling_chart(&phases, text, Frame::scaling()).expect("chart");
        assert_eq!(chart.caps.len(), 7, "every phase's cap is on the axis");
        // The caps double: equal steps on a log scale.
        let steps: Vec<f64> = chart.caps.windows(2).map(|w| w[1].x - w[0].x).collect();
        assert!(steps
            .iter()
            .all(|s| (s - steps[0]).abs() < 1e-9 && *s > 0.0));
        assert!(chart.caps.iter().all(|c| c.labelled));
        let f = chart.frame;
        assert!(chart.caps[0].x > f.left && chart.caps[6].x < f.width - f.right);
        assert_eq!(
            chart.points.iter().map(|p| p.phase).collect::<Vec<_>>(),
            [1, 2]
        );
        assert!(
            (chart.points[1].x - chart.caps[1].x).abs() < 1e-9,
            "on its cap"
        );
        assert!(
            chart.points[1].y > chart.points[0].y,
            "a lower loss sits lower"
        );
        let path = chart.path.expect("a line between two points");
        assert!(path.starts_with('M') && path.matches(" L").count() == 1);
        assert!(!chart.y_ticks.is_empty());
        assert_eq!(
            chart.x_ticks.iter().map(|t| t.1).collect::<Vec<_>>(),
            [1.0e5, 1.0e6]
        );
    }

    #[test]
    fn a_phase_without_a_score_is_skipped_by_the_line() {
        let phases = demo_caps([Some(3.4), None, Some(2.5), None, None, None, None]);
        let chart = scaling_chart(&phases, text, Frame::scaling()).expect("chart");
        assert_eq!(
            chart.points.iter().map(|p| p.phase).collect::<Vec<_>>(),
            [1, 3]
        );
        assert_eq!(chart.path.expect("line").matches(" L").count(), 1);
        let one = demo_caps([Some(3.4), None, None, None, None, None, None]);
        let chart = scaling_chart(&one, text, Frame::scaling()).expect("chart");
        assert_eq!(chart.points.len(), 1);
        assert_eq!(chart.path, None, "no line through a single point");
    }

    #[test]
    fn without_scores_the_caps_still_show_and_without_phases_there_is_no_chart() {
        let chart = scaling_chart(&demo_caps([None; 7]), text, Frame::scaling()).expect("chart");
        assert_eq!(chart.caps.len(), 7);
        assert!(chart.points.is_empty() && chart.y_ticks.is_empty() && chart.path.is_none());
        assert_eq!(scaling_chart(&[], text, Frame::scaling()), None);
        let nan = demo_caps([Some(f64::NAN), None, None, None, None, None, None]);
        let chart = scaling_chart(&nan, text, Frame::scaling()).expect("chart");
        assert!(
            chart.points.is_empty(),
            "a loss that is not a number is no point"
        );
    }

    #[test]
    fn caps_too_close_to_label_both_keep_their_guides() {
        let phases = [
            PhaseCap {
                phase: 1,
                max_parameters: 1_000_000_000,
                best_loss: None,
            },
            PhaseCap {
                phase: 2,
                max_parameters: 1_050_000_000,
                best_loss: None,
            },
            PhaseCap {
                phase: 3,
                max_parameters: 100_000_000_000,
                best_loss: None,
            },
        ];
        let chart = scaling_chart(&phases, text, Frame::scaling()).expect("chart");
        assert_eq!(
            chart.caps.iter().map(|c| c.labelled).collect::<Vec<_>>(),
            [true, false, true]
        );
    }

    #[test]
    fn tick_labels_have_the_decimals_their_values_need() {
        assert_eq!(tick_decimals(&[2.0, 3.0, 4.0]), 1);
        assert_eq!(tick_decimals(&[1.7, 1.8, 1.9]), 1);
        assert_eq!(tick_decimals(&[3.35, 3.375, 3.4]), 3);
        assert_eq!(tick_decimals(&[0.25, 0.5]), 2);
        assert_eq!(tick_decimals(&[]), 1);
    }
}
