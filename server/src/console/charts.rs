//! The console's charts: drawn on the server as SVG by plotters, put in the page as an
//! image with a text alternative (the figures themselves), so a screen reader, a printer
//! and a browser without script all get them.

use chrono::{DateTime, Utc};
use plotters::prelude::*;

use super::view::Chart;

const WIDTH: u32 = 640;
const HEIGHT: u32 = 280;
/// The console's accent colour and a palette for several series (Okabe–Ito, readable
/// with colour blindness).
const PALETTE: [RGBColor; 6] = [
    RGBColor(11, 92, 173),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
];

/// Labels the SVG as one image for assistive technology, with `alt` as its name.
fn labelled(svg: String, alt: &str) -> String {
    let alt = askama::filters::escape(alt, askama::filters::Html)
        .map(|e| e.to_string())
        .unwrap_or_default();
    svg.replacen(
        "<svg ",
        &format!("<svg role=\"img\" aria-label=\"{alt}\" "),
        1,
    )
}

/// A bar per label. `None` when there is nothing to draw (or drawing failed, logged).
pub fn bars(title: &str, labels: &[String], values: &[u64], unit: &str) -> Option<Chart> {
    if values.is_empty() || values.iter().all(|v| *v == 0) {
        return None;
    }
    let max = values.iter().copied().max().unwrap_or(1).max(1);
    let mut svg = String::new();
    let drawn = (|| -> Result<(), Box<dyn std::error::Error + '_>> {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let n = values.len();
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d((0..n).into_segmented(), 0u64..max + max / 10 + 1)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_desc(unit)
            .x_labels(n.min(24))
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .label_style(("sans-serif", 12))
            .draw()?;
        chart.draw_series(
            Histogram::vertical(&chart)
                .style(PALETTE[0].filled())
                .margin(4)
                .data(values.iter().enumerate().map(|(i, v)| (i, *v))),
        )?;
        root.present()?;
        Ok(())
    })();
    if let Err(e) = drawn {
        tracing::warn!(error = %e, chart = title, "chart not drawn");
        return None;
    }
    let alt = labels
        .iter()
        .zip(values)
        .map(|(l, v)| format!("{l}: {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    Some(Chart {
        title: title.to_owned(),
        svg: labelled(svg, &format!("{title} ({unit}). {alt}")),
    })
}

/// One line per series over time (x in epoch milliseconds, UTC).
pub fn lines(title: &str, series: &[(String, Vec<(i64, u64)>)], unit: &str) -> Option<Chart> {
    let points = series.iter().flat_map(|(_, p)| p.iter());
    let (mut x0, mut x1, mut max) = (i64::MAX, i64::MIN, 0u64);
    for (x, y) in points {
        x0 = x0.min(*x);
        x1 = x1.max(*x);
        max = max.max(*y);
    }
    if max == 0 || x0 >= x1 {
        return None;
    }
    let mut svg = String::new();
    let drawn = (|| -> Result<(), Box<dyn std::error::Error + '_>> {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(x0..x1, 0u64..max + max / 10 + 1)?;
        chart
            .configure_mesh()
            .y_desc(unit)
            .x_labels(7)
            .x_label_formatter(&|ms| {
                DateTime::<Utc>::from_timestamp_millis(*ms)
                    .map(|t| t.format("%m-%d %H:%M").to_string())
                    .unwrap_or_default()
            })
            .label_style(("sans-serif", 12))
            .draw()?;
        for (i, (name, points)) in series.iter().enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    colour.stroke_width(2),
                ))?
                .label(name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.3))
            .label_font(("sans-serif", 12))
            .draw()?;
        root.present()?;
        Ok(())
    })();
    if let Err(e) = drawn {
        tracing::warn!(error = %e, chart = title, "chart not drawn");
        return None;
    }
    let alt = series
        .iter()
        .map(|(name, p)| format!("{name}: {} in all", p.iter().map(|(_, y)| y).sum::<u64>()))
        .collect::<Vec<_>>()
        .join(", ");
    Some(Chart {
        title: title.to_owned(),
        svg: labelled(svg, &format!("{title} ({unit}). {alt}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bar_chart_is_an_labelled_svg_with_its_figures() {
        let c = bars(
            "Returns verdicts",
            &["sellable".into(), "quarantined".into()],
            &[12, 3],
            "packs",
        );
        let Some(c) = c else { panic!("drawn") };
        assert!(c.svg.starts_with("<svg role=\"img\" aria-label=\"Returns verdicts (packs). sellable: 12, quarantined: 3\""), "{}", &c.svg[..200]);
        assert!(c.svg.contains("</svg>"));
        assert!(!c.svg.contains("style="), "inline styles break the CSP");
    }

    #[test]
    fn nothing_to_draw_is_no_chart() {
        assert!(bars("x", &["a".into()], &[0], "n").is_none());
        assert!(lines("x", &[("a".into(), vec![(0, 1)])], "n").is_none());
    }

    #[test]
    fn labels_cannot_break_out_of_the_attribute() {
        let c = bars("x", &["\"><script>".into()], &[1], "n");
        let Some(c) = c else { panic!("drawn") };
        assert!(!c.svg.contains("<script>"));
    }
}
