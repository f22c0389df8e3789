//! `Sequential::summary()`: Keras's table of layers, output shapes and parameter counts, and the
//! per-layer weight layout that saving and loading share.

pub(crate) use crate::layers::WeightSpec;
use crate::layers::{count_weights, Layer};

/// A layer as built for a given input width.
#[derive(Clone, Debug)]
pub(crate) struct LayerInfo {
    pub name: String,
    pub type_name: &'static str,
    pub out_w: usize,
    /// In the order of the flat vectors: trainable ones in parameter order, then the moving statistics.
    pub weights: Vec<WeightSpec>,
}

impl LayerInfo {
    pub fn trainable(&self) -> usize {
        count_weights(&self.weights).0
    }

    pub fn non_trainable(&self) -> usize {
        count_weights(&self.weights).1
    }
}

/// Keras's default layer names: `dense`, `dense_1`, ... per type, unless the user named it.
pub(crate) fn layer_names(layers: &[Layer]) -> Vec<String> {
    let mut seen: Vec<(&'static str, usize)> = Vec::new();
    layers
        .iter()
        .map(|l| {
            let base = l.spec().name_prefix();
            let n = match seen.iter_mut().find(|(b, _)| *b == base) {
                Some((_, n)) => {
                    *n += 1;
                    *n - 1
                }
                None => {
                    seen.push((base, 1));
                    0
                }
            };
            match &l.name {
                Some(name) => name.clone(),
                None if n == 0 => base.to_string(),
                None => format!("{base}_{n}"),
            }
        })
        .collect()
}

/// The layers' weight layout for `input_w` features (mirrors `Plan::build`).
pub(crate) fn layer_infos(layers: &[Layer], input_w: usize) -> Vec<LayerInfo> {
    let names = layer_names(layers);
    let mut width = input_w;
    let mut out = Vec::with_capacity(layers.len());
    for (l, name) in layers.iter().zip(names) {
        let out_w = l.output_width(width);
        let weights = l.spec().weights(width);
        out.push(LayerInfo { name, type_name: l.type_name(), out_w, weights });
        width = out_w;
    }
    out
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn bytes(n: usize) -> String {
    let b = (n * 4) as f64;
    if b >= 1024.0 * 1024.0 {
        format!("{:.2} MB", b / (1024.0 * 1024.0))
    } else if b >= 1024.0 {
        format!("{:.2} KB", b / 1024.0)
    } else {
        format!("{b:.2} B")
    }
}

/// Keras's summary table of `layers` on `built` input features (None: not known yet).
pub(crate) fn summary(layers: &[Layer], built: Option<usize>) -> String {
    let infos = layer_infos(layers, built.unwrap_or(0));
    let rows: Vec<[String; 3]> = infos
        .iter()
        .map(|i| {
            let shape = if built.is_some() { format!("(None, {})", i.out_w) } else { "?".into() };
            let count = if built.is_some() { thousands(i.trainable() + i.non_trainable()) } else { "?".into() };
            [format!("{} ({})", i.name, i.type_name), shape, count]
        })
        .collect();
    let heads = ["Layer (type)", "Output Shape", "Param #"];
    let mut w = [31usize, 22, 13];
    for r in &rows {
        for (k, cell) in r.iter().enumerate() {
            w[k] = w[k].max(cell.chars().count());
        }
    }
    let line = |l: char, m: char, r: char, fill: char| {
        let seg: Vec<String> = w.iter().map(|n| fill.to_string().repeat(n + 2)).collect();
        format!("{l}{}{r}\n", seg.join(&m.to_string()))
    };
    let mut s = String::from("Model: \"sequential\"\n");
    s += &line('┏', '┳', '┓', '━');
    s += &format!("┃ {:<a$} ┃ {:<b$} ┃ {:>c$} ┃\n", heads[0], heads[1], heads[2], a = w[0], b = w[1], c = w[2]);
    s += &line('┡', '╇', '┩', '━');
    for (i, r) in rows.iter().enumerate() {
        s += &format!("│ {:<a$} │ {:<b$} │ {:>c$} │\n", r[0], r[1], r[2], a = w[0], b = w[1], c = w[2]);
        if i + 1 < rows.len() {
            s += &line('├', '┼', '┤', '─');
        }
    }
    s += &line('└', '┴', '┘', '─');
    let trainable: usize = infos.iter().map(LayerInfo::trainable).sum();
    let non: usize = infos.iter().map(LayerInfo::non_trainable).sum();
    if built.is_some() {
        let total = trainable + non;
        s += &format!(" Total params: {} ({})\n", thousands(total), bytes(total));
        s += &format!(" Trainable params: {} ({})\n", thousands(trainable), bytes(trainable));
        s += &format!(" Non-trainable params: {} ({})\n", thousands(non), bytes(non));
    } else {
        s += " Total params: ? (the input width is not known yet: set input_shape on the first layer, or fit)\n";
    }
    for (l, info) in layers.iter().zip(&infos) {
        let notes = l.spec().notes();
        if !notes.is_empty() {
            s += &format!(" {}: {}\n", info.name, notes.join(", "));
        }
    }
    s
}

/// (total, trainable, non-trainable) parameter counts of `layers` on `input_w` features.
pub(crate) fn count_params(layers: &[Layer], input_w: usize) -> (usize, usize, usize) {
    let infos = layer_infos(layers, input_w);
    let t: usize = infos.iter().map(LayerInfo::trainable).sum();
    let n: usize = infos.iter().map(LayerInfo::non_trainable).sum();
    (t + n, t, n)
}

#[cfg(test)]
mod tests {
    use crate::{BatchNormalization, Dense, Device, Dropout, Sequential};

    #[test]
    fn summary_counts_like_keras() {
        let m = Sequential::new(
            &Device::cpu(),
            vec![
                Dense::new(512).activation("relu").input_shape(8),
                BatchNormalization::new(),
                Dropout::new(0.3),
                Dense::new(512).activation("relu"),
                Dense::new(1),
            ],
        );
        let s = m.summary();
        assert!(s.contains("dense (Dense)"), "{s}");
        assert!(s.contains("dense_1 (Dense)"), "{s}");
        assert!(s.contains("batch_normalization (BatchNormalization)"), "{s}");
        assert!(s.contains("(None, 512)"), "{s}");
        assert!(s.contains("4,608"), "{s}");
        assert!(s.contains("2,048"), "{s}");
        let trainable = 8 * 512 + 512 + 2 * 512 + 512 * 512 + 512 + 512 + 1;
        assert_eq!(m.count_params(), Some((trainable + 1024, trainable, 1024)));
        assert!(s.contains("Non-trainable params: 1,024"), "{s}");
        assert!(!s.contains("regularizer"), "{s}");
    }

    #[test]
    fn summary_lists_regularizers() {
        let m = Sequential::new(
            &Device::cpu(),
            vec![
                Dense::new(4).input_shape(3).kernel_regularizer("l2").bias_regularizer(crate::Regularizer::l1(0.5)),
                Dense::new(1),
            ],
        );
        let s = m.summary();
        assert!(s.contains(" dense: kernel_regularizer=L2(l2=0.01), bias_regularizer=L1(l1=0.5)\n"), "{s}");
        assert!(!s.contains("dense_1:"), "{s}");
    }
}
