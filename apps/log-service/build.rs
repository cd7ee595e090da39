//! Compiles the .proto files with `protox` (a pure-Rust protobuf compiler, with the well-known
//! types such as `google/protobuf/struct.proto` built in), so building needs no `protoc` binary
//! on the machine.
//!
//! The distributed-logging system's original definitions, `tests/proto/`, are the one source of
//! its wire contract. Two sets come out of them:
//! - the served set: the original definitions with log-service's additions (`proto/`) merged in,
//!   for log-service's servers and clients, plus its encoded descriptor set,
//!   `log_service_descriptor.bin`, which gRPC server reflection serves;
//! - the original definitions alone, as clients only, under `OUT_DIR/original/`. Only the
//!   integration tests include them: a client generated from the original contract is the proof
//!   that the served wire format is that contract.

use std::path::PathBuf;

use prost_types::source_code_info::Location;
use prost_types::{
    DescriptorProto, EnumDescriptorProto, EnumValueDescriptorProto, FieldDescriptorProto,
    FileDescriptorProto, FileDescriptorSet,
};
use protox::prost::Message as _;

/// A file's messages, whose members are fields (`FileDescriptorProto.message_type`).
const MESSAGES: Kind<DescriptorProto, FieldDescriptorProto> = Kind {
    list: 4,
    name: DescriptorProto::name,
    members: |m| &mut m.field,
    member: |f| (f.name(), f.number()),
};

/// A file's enums, whose members are values (`FileDescriptorProto.enum_type`).
const ENUMS: Kind<EnumDescriptorProto, EnumValueDescriptorProto> = Kind {
    list: 5,
    name: EnumDescriptorProto::name,
    members: |e| &mut e.value,
    member: |v| (v.name(), v.number()),
};

/// The members within a message or an enum (`DescriptorProto.field`,
/// `EnumDescriptorProto.value`): the path step of a member's source location.
const MEMBERS: i32 = 2;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);

    let original = compile(
        &["tests/proto/logs.proto", "tests/proto/query.proto"],
        "tests/proto",
    )?;
    let additions = compile(&["proto/logs.proto", "proto/query.proto"], "proto")?;
    let served = with_additions(original.clone(), additions)?;
    std::fs::write(
        out_dir.join("log_service_descriptor.bin"),
        served.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(served)?;

    let original_out = out_dir.join("original");
    std::fs::create_dir_all(&original_out)?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(false)
        .out_dir(original_out)
        .compile_fds(original)?;
    Ok(())
}

/// The descriptor set of `protos` (and what they import), resolved against `include`.
fn compile(protos: &[&str], include: &str) -> Result<FileDescriptorSet, protox::Error> {
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    protox::compile(protos, [include])
}

/// `original` with each file of `additions` merged into the original file of the same name: a
/// message or enum the original has gets the additions' fields or values after its own, one it
/// lacks is added whole, and the additions' comments come along. A field or value whose name or
/// number the original already uses is an error: an addition never changes the contract.
fn with_additions(
    mut original: FileDescriptorSet,
    additions: FileDescriptorSet,
) -> Result<FileDescriptorSet, String> {
    for extra in additions.file {
        let name = extra.name().to_owned();
        let file = original
            .file
            .iter_mut()
            .find(|f| f.name() == name)
            .ok_or_else(|| format!("{name}: no original file of that name"))?;
        merge_file(file, extra).map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(original)
}

/// A source location's path in the additions file, and the path of the same item once merged.
type Moved = Vec<(Vec<i32>, Vec<i32>)>;

fn merge_file(file: &mut FileDescriptorProto, extra: FileDescriptorProto) -> Result<(), String> {
    let mut moved = Moved::new();
    MESSAGES.merge(&mut file.message_type, extra.message_type, &mut moved)?;
    ENUMS.merge(&mut file.enum_type, extra.enum_type, &mut moved)?;
    let locations = extra
        .source_code_info
        .map(|s| s.location)
        .unwrap_or_default();
    let served = file.source_code_info.get_or_insert_with(Default::default);
    for location in locations.into_iter().filter(commented) {
        let Some((_, to)) = moved.iter().find(|(from, _)| *from == location.path) else {
            continue;
        };
        if !served
            .location
            .iter()
            .any(|l| l.path == *to && commented(l))
        {
            served.location.push(Location {
                path: to.clone(),
                ..location
            });
        }
    }
    Ok(())
}

fn commented(location: &Location) -> bool {
    location.leading_comments.is_some() || location.trailing_comments.is_some()
}

/// One kind of item of a file, and how to merge it.
struct Kind<T, M> {
    /// The item list's path step in a file's source locations.
    list: i32,
    name: fn(&T) -> &str,
    members: fn(&mut T) -> &mut Vec<M>,
    /// A member's name and number.
    member: fn(&M) -> (&str, i32),
}

impl<T, M> Kind<T, M> {
    /// Merges each item of `extra` into `items`, recording in `moved` where each item and member
    /// went.
    fn merge(&self, items: &mut Vec<T>, extra: Vec<T>, moved: &mut Moved) -> Result<(), String> {
        for (i, mut item) in extra.into_iter().enumerate() {
            let from = |path: &[i32]| [&[self.list, i as i32], path].concat();
            let Some(at) = items
                .iter()
                .position(|o| (self.name)(o) == (self.name)(&item))
            else {
                // An item of its own: added whole, its members where they were.
                let to = |path: &[i32]| [&[self.list, items.len() as i32], path].concat();
                moved.push((from(&[]), to(&[])));
                for j in 0..(self.members)(&mut item).len() as i32 {
                    moved.push((from(&[MEMBERS, j]), to(&[MEMBERS, j])));
                }
                items.push(item);
                continue;
            };
            let to = |path: &[i32]| [&[self.list, at as i32], path].concat();
            moved.push((from(&[]), to(&[])));
            let name = (self.name)(&item).to_owned();
            let members = std::mem::take((self.members)(&mut item));
            let target = (self.members)(&mut items[at]);
            for (j, member) in members.into_iter().enumerate() {
                let (new_name, number) = (self.member)(&member);
                if let Some(used) = target
                    .iter()
                    .map(self.member)
                    .find(|(used, used_number)| *used == new_name || *used_number == number)
                {
                    return Err(format!(
                        "{name}.{new_name} = {number} clashes with the original {} = {}",
                        used.0, used.1
                    ));
                }
                moved.push((
                    from(&[MEMBERS, j as i32]),
                    to(&[MEMBERS, target.len() as i32]),
                ));
                target.push(member);
            }
        }
        Ok(())
    }
}
