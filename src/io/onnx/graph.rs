//! A small builder of ONNX graphs over the generated protobuf types: named constants
//! (initializers), nodes with attributes, float tensor inputs and outputs with a symbolic batch
//! dimension. It knows nothing of layers; `super` decides what each layer becomes.

use super::proto::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto::dimension,
    tensor_shape_proto::Dimension, type_proto, AttributeProto, GraphProto, NodeProto, TensorProto, TensorShapeProto,
    TypeProto, ValueInfoProto,
};

/// The name of the batch dimension in the graph's input and output shapes.
pub(super) const BATCH: &str = "batch";

/// An attribute value of a node.
pub(super) enum Attr {
    Float(f32),
    Int(i64),
}

/// Nodes and initializers being gathered into one graph.
#[derive(Default)]
pub(super) struct Graph {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
}

impl Graph {
    /// A float32 constant of shape `dims` holding `values` (row-major), as an initializer named
    /// `name`; returns the name.
    pub fn floats(&mut self, name: &str, dims: &[usize], values: &[f32]) -> String {
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.constant(name, dims, DataType::Float, raw)
    }

    /// An int64 constant (Gather's indices), as [`Graph::floats`].
    pub fn ints(&mut self, name: &str, dims: &[usize], values: &[i64]) -> String {
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.constant(name, dims, DataType::Int64, raw)
    }

    /// A boolean constant (Where's condition), as [`Graph::floats`].
    pub fn bools(&mut self, name: &str, dims: &[usize], values: &[bool]) -> String {
        let raw = values.iter().map(|&v| u8::from(v)).collect();
        self.constant(name, dims, DataType::Bool, raw)
    }

    fn constant(&mut self, name: &str, dims: &[usize], data_type: DataType, raw: Vec<u8>) -> String {
        self.initializers.push(TensorProto {
            name: Some(name.to_string()),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: Some(data_type as i32),
            raw_data: Some(raw),
            ..Default::default()
        });
        name.to_string()
    }

    /// Appends a node `op_type(inputs) -> output` named `output`; returns the output's name.
    pub fn node(&mut self, op_type: &str, inputs: &[&str], output: &str, attrs: &[(&str, Attr)]) -> String {
        let attribute = attrs
            .iter()
            .map(|(name, value)| {
                let mut a = AttributeProto { name: Some((*name).to_string()), ..Default::default() };
                match *value {
                    Attr::Float(f) => {
                        a.r#type = Some(AttributeType::Float as i32);
                        a.f = Some(f);
                    }
                    Attr::Int(i) => {
                        a.r#type = Some(AttributeType::Int as i32);
                        a.i = Some(i);
                    }
                }
                a
            })
            .collect();
        self.nodes.push(NodeProto {
            name: Some(output.to_string()),
            op_type: Some(op_type.to_string()),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.to_string()],
            attribute,
            ..Default::default()
        });
        output.to_string()
    }

    /// Makes `x`, the last result, the graph output `name`: renames the last node's output, or
    /// when `x` is no node's output (a model of Dropout and linear layers), copies it.
    pub fn rename_output(&mut self, x: &str, name: &str) {
        match self.nodes.last_mut() {
            Some(n) if n.output.first().is_some_and(|o| o == x) => {
                n.output[0] = name.to_string();
                n.name = Some(name.to_string());
            }
            _ => {
                self.node("Identity", &[x], name, &[]);
            }
        }
    }

    /// The finished graph: `input` and `output` are float32 tensors of `[batch, width]`.
    pub fn finish(self, name: &str, input: ValueInfoProto, output: ValueInfoProto) -> GraphProto {
        GraphProto {
            name: Some(name.to_string()),
            node: self.nodes,
            initializer: self.initializers,
            input: vec![input],
            output: vec![output],
            ..Default::default()
        }
    }
}

/// A float32 `[batch, width]` tensor's declaration, with a description.
pub(super) fn matrix_value(name: &str, width: usize, doc: String) -> ValueInfoProto {
    let dim = |value| Dimension { value: Some(value), ..Default::default() };
    let shape = TensorShapeProto {
        dim: vec![dim(dimension::Value::DimParam(BATCH.to_string())), dim(dimension::Value::DimValue(width as i64))],
    };
    ValueInfoProto {
        name: Some(name.to_string()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(DataType::Float as i32),
                shape: Some(shape),
            })),
            ..Default::default()
        }),
        doc_string: Some(doc),
        ..Default::default()
    }
}
