//! The errors of the core: what went wrong, as data, and the words that say it.
//!
//! Each variant is one fact (a source out of feed order, a total that does not fit in int64, a
//! truncated encoding), carrying the values that describe it. Its `Display` writes exactly the words
//! the pure-Python reference writes for the same fact (the conformance tests compare messages), and
//! [`Error::kind`] names the Python exception class the binding raises for it: the binding crate
//! turns an [`Error`] into a Python exception in one place, with no words of its own.
//!
//! The Python side keeps the same sentences as `str.format` templates in `igcore._messages`. **The
//! template of a variant is named by the variant's name in UPPER_SNAKE case** (variant `NotFeedOrder`,
//! template `NOT_FEED_ORDER`: each capital letter starts a word) and is formatted with the variant's
//! fields as named arguments (see [`Error::facts`]; a field may name its fact otherwise, as
//! `type_name as "type"` does for a template field that is a Rust keyword). [`Error::examples`] holds one value of every variant, so that a test can format
//! each template with the example's facts and compare the words with `Display`'s.
//!
//! Variants are grouped by hot path (one enum each, all converting into [`Error`]); a variant's name
//! is unique across all of them, since it names its template.

use std::fmt;

use thiserror::Error;

/// The Python exception class of an error; see [`ErrorKind::python_class`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// `ValueError`: arguments or data that do not fit together.
    Value,
    /// `OverflowError`: a result that does not fit in its integer type.
    Overflow,
    /// `MemoryError`: an allocation too big for the memory available (a size read from input).
    Memory,
    /// `KeyError(id)`: an id that names nothing.
    Key,
    /// `TypeError`: an argument of the wrong kind.
    Type,
    /// `igcore.msgpack.FormatError` (a `ValueError`): bytes that are no msgpack.
    Format,
    /// `igcore.msgpack.StackError` (a `ValueError`): msgpack nested too deep.
    Stack,
    /// `igcore.msgpack.OutOfData`: a stream with no whole object left.
    OutOfData,
    /// `RuntimeError`: a call that cannot go on (the binding's: an object changed or busy).
    Runtime,
}

impl ErrorKind {
    /// The name of the Python exception class.
    pub fn python_class(self) -> &'static str {
        match self {
            ErrorKind::Value => "ValueError",
            ErrorKind::Overflow => "OverflowError",
            ErrorKind::Memory => "MemoryError",
            ErrorKind::Key => "KeyError",
            ErrorKind::Type => "TypeError",
            ErrorKind::Format => "FormatError",
            ErrorKind::Stack => "StackError",
            ErrorKind::OutOfData => "OutOfData",
            ErrorKind::Runtime => "RuntimeError",
        }
    }
}

/// One value that describes an error, as a template's named argument receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    Int(i128),
    Text(String),
}

/// A field of an error variant, as a [`Fact`].
pub trait ToFact {
    fn to_fact(&self) -> Fact;
}

macro_rules! int_facts {
    ($($ty:ty),*) => {
        $(impl ToFact for $ty {
            fn to_fact(&self) -> Fact {
                Fact::Int(i128::from(*self))
            }
        })*
    };
}

int_facts!(u8, u32, u64, i64);

impl ToFact for usize {
    fn to_fact(&self) -> Fact {
        // usize is at most 64 bits on every supported target.
        Fact::Int(*self as i128)
    }
}

impl ToFact for String {
    fn to_fact(&self) -> Fact {
        Fact::Text(self.clone())
    }
}

impl ToFact for &'static str {
    fn to_fact(&self) -> Fact {
        Fact::Text((*self).to_owned())
    }
}

/// The score kind of a feed, named as numpy names the dtype.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreKind {
    Int64,
    Float64,
}

impl ScoreKind {
    pub fn of(float_scores: bool) -> Self {
        if float_scores {
            ScoreKind::Float64
        } else {
            ScoreKind::Int64
        }
    }
}

impl fmt::Display for ScoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ScoreKind::Int64 => "int64",
            ScoreKind::Float64 => "float64",
        })
    }
}

impl ToFact for ScoreKind {
    fn to_fact(&self) -> Fact {
        Fact::Text(self.to_string())
    }
}

/// How the body of a compact encoding breaks the format: the `reason` of
/// [`CodecError::MalformedEncoding`]. Each has its template too (`TRUNCATED_VARINT`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Malformation {
    #[error("truncated varint")]
    TruncatedVarint,
    #[error("varint beyond 64 bits")]
    VarintBeyond64Bits,
    #[error("overlong varint")]
    OverlongVarint,
    #[error("count {count} exceeds the {left} bytes left")]
    CountExceedsBytesLeft { count: u64, left: usize },
    #[error("{left} bytes after the last value")]
    BytesAfterLastValue { left: usize },
    #[error("unknown flags 0x{flags:02x}")]
    UnknownEntryFlags { flags: u8 },
    /// An author table of `size` authors, too many (or none) for `entries` entries.
    #[error("author table of {size} for {entries} entries")]
    AuthorTableSizeWrong { size: u64, entries: usize },
    #[error("author index {index} beyond the table of {size}")]
    AuthorIndexBeyondTable { index: u64, size: usize },
}

impl ToFact for Malformation {
    fn to_fact(&self) -> Fact {
        Fact::Text(self.to_string())
    }
}

/// Which compact encoding a codec error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    IdList,
    Entries,
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Encoding::IdList => "id list",
            Encoding::Entries => "entries",
        })
    }
}

impl ToFact for Encoding {
    fn to_fact(&self) -> Fact {
        Fact::Text(self.to_string())
    }
}

/// One enum of error facts: each variant with its exception kind, its words (`#[error]`) and an
/// example value of each field (`field: Type = example`; `field as "name": ...` names the fact
/// otherwise than the field, for a template field that is a Rust keyword such as `type`). Generates `kind`, `name`, `facts`,
/// `examples` and `NAMES`, all from the one list, so no variant can lack an example. Exported for the
/// binding crate's own sentences (it needs `thiserror` as a dependency).
#[doc(hidden)]
#[macro_export]
macro_rules! error_facts {
    (@fact_name $field:ident) => {
        stringify!($field)
    };
    (@fact_name $field:ident $fact:literal) => {
        $fact
    };
    (
        $(#[$enum_meta:meta])*
        pub enum $Enum:ident {
            $(
                $(#[$meta:meta])*
                $kind:ident $Variant:ident $({
                    $($field:ident $(as $fact:literal)? : $ty:ty = $example:expr),* $(,)?
                })?
            ),* $(,)?
        }
    ) => {
        $(#[$enum_meta])*
        #[derive(Debug, Clone, PartialEq, Eq, ::thiserror::Error)]
        pub enum $Enum {
            $(
                $(#[$meta])*
                $Variant $({ $($field: $ty),* })?
            ),*
        }

        impl $Enum {
            /// Every variant's name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$(stringify!($Variant)),*];

            /// The Python exception class this error raises.
            pub fn kind(&self) -> $crate::error::ErrorKind {
                match self {
                    $(Self::$Variant { .. } => $crate::error::ErrorKind::$kind),*
                }
            }

            /// The variant's name; its template in `igcore._messages` is this in UPPER_SNAKE case.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Self::$Variant { .. } => stringify!($Variant)),*
                }
            }

            /// The fields, by name: the named arguments of the variant's template.
            pub fn facts(&self) -> Vec<(&'static str, $crate::error::Fact)> {
                match self {
                    $(
                        Self::$Variant $({ $($field),* })? => {
                            vec![$($((
                                $crate::error_facts!(@fact_name $field $($fact)?),
                                $crate::error::ToFact::to_fact($field),
                            )),*)?]
                        }
                    ),*
                }
            }

            /// One value of every variant, in declaration order.
            pub fn examples() -> Vec<Self> {
                vec![$(Self::$Variant $({ $($field: $example),* })?),*]
            }
        }
    };
}

error_facts! {
    /// Facts of several hot paths: the arguments of a call, and the ids of one
    /// [`IdIndex`](crate::id_index::IdIndex).
    pub enum CommonError {
        /// Two arrays of one call that must have one length (`first` and `second` name them).
        #[error("{first} and {second} differ in length ({first_length} != {second_length})")]
        Value LengthsDiffer {
            first: &'static str = "keys",
            second: &'static str = "deltas",
            first_length: usize = 3,
            second_length: usize = 2,
        },
        /// An argument below its smallest value (`name` names it).
        #[error("{name} must be at least {minimum}, got {value}")]
        Value BelowMinimum { name: &'static str = "window_seconds", minimum: i64 = 1, value: i64 = 0 },
        #[error("more than {max} distinct ids in one index")]
        Value TooManyIds { max: usize = crate::id_index::MAX_IDS },
    }
}

error_facts! {
    /// Timelines: merging pages, timeline caches and their bytes, aggregated activity.
    pub enum TimelineError {
        /// A merge source that is neither a Timeline of this backend nor three canonical arrays.
        #[error(
            "sources[{index}] is not in canonical form: a Timeline of this backend, or three \
             C-contiguous arrays of one length (int64 or float64 scores, int64 post and author ids)"
        )]
        Type SourceNotCanonical { index: usize = 2 },
        #[error(
            "sources mix int64 and float64 scores (sources[{int_index}] has int64, \
             sources[{float_index}] has float64); one feed has one score kind: convert explicitly, \
             e.g. with scores.astype(np.float64)"
        )]
        Type SourcesMixScoreKinds { int_index: usize = 0, float_index: usize = 3 },
        #[error(
            "the cursor belongs to a feed with {cursor_kind} scores; these sources have \
             {sources_kind} scores"
        )]
        Value CursorScoreKind {
            cursor_kind: ScoreKind = ScoreKind::Float64,
            sources_kind: ScoreKind = ScoreKind::Int64,
        },
        /// Array entries out of feed order (`previous` is `entry - 1`).
        #[error(
            "sources[{index}] is not in feed order: entry {entry} ranks above entry {previous} \
             (feed order is descending by (score, post_id))"
        )]
        Value NotFeedOrder { index: usize = 4, entry: usize = 1, previous: usize = 0 },
        #[error("sources[{index}] has a NaN score at index {entry}")]
        Value NanScoreInSource { index: usize = 0, entry: usize = 1 },
        #[error("insert_many takes three 1-D contiguous arrays of one length")]
        Type NotEntryColumns,
        #[error("backfill takes a Timeline or three canonical arrays")]
        Type BackfillSource,
        #[error("not a timeline: a NaN score at entry {entry}")]
        Value NotATimelineNan { entry: usize = 2 },
        /// Encoded entries out of strict feed order (`previous` is `entry - 1`).
        #[error("not a timeline: entry {entry} does not rank below entry {previous}")]
        Value NotATimelineOrder { entry: usize = 1, previous: usize = 0 },
        #[error("not a timeline: post {post_id} appears twice")]
        Value DuplicatePost { post_id: i64 = 5 },
        #[error(
            "actor_ids, verbs, target_ids and timestamps differ in length ({actor_ids}, {verbs}, \
             {target_ids}, {timestamps})"
        )]
        Value ActivityLengthsDiffer {
            actor_ids: usize = 3,
            verbs: usize = 3,
            target_ids: usize = 2,
            timestamps: usize = 3,
        },
    }
}

error_facts! {
    /// Counters: aggregation, counter tables, windowed counters, HyperLogLog.
    pub enum CounterError {
        /// An aggregate total outside int64.
        #[error("the total for key {key} does not fit in int64")]
        Overflow TotalOverflow { key: i64 = 9 },
        /// A counter table's total of one kind (`kind`: its name) outside int64.
        #[error("the {kind} total for key {key} does not fit in int64")]
        Overflow KindTotalOverflow { kind: String = "likes".into(), key: i64 = 2 },
        #[error("the pending {kind} delta for key {key} does not fit in int64")]
        Overflow PendingDeltaOverflow { kind: String = "views".into(), key: i64 = 4 },
        #[error("no kind number {kind}")]
        Value NoKind { kind: usize = 7 },
        #[error("cannot add a table of {theirs} kinds to one of {mine}")]
        Value KindCountsDiffer { theirs: usize = 3, mine: usize = 2 },
        #[error("bucket_seconds and buckets must be at least 1")]
        Value WindowShape { bucket_seconds: i64 = 0, buckets: usize = 12 },
        #[error("the count for key {key} at time {time} does not fit in int64")]
        Overflow CountOverflow { key: i64 = 1, time: i64 = 0 },
        #[error("the window total for key {key} does not fit in int64")]
        Overflow WindowTotalOverflow { key: i64 = 1 },
        #[error("element ends must rise within the buffer")]
        Value ElementEndsOutOfRange,
        #[error("the last element must end with the buffer")]
        Value ElementsEndEarly,
        #[error("a HyperLogLog has {expected} registers, got {got}")]
        Value RegisterCount { expected: usize = 16_384, got: usize = 100 },
        #[error("register {register} holds {value}, above the largest possible value {max}")]
        Value RegisterTooLarge { register: usize = 3, value: u8 = 60, max: u8 = 51 },
    }
}

error_facts! {
    /// The compact id codecs (`kind` names the encoding: "id list" or "entries").
    pub enum CodecError {
        #[error(
            "scores, post_ids and author_ids differ in length ({scores}, {post_ids}, {author_ids})"
        )]
        Value EntryLengthsDiffer { scores: usize = 2, post_ids: usize = 3, author_ids: usize = 3 },
        #[error("truncated {kind}: {size} bytes, the smallest is {smallest}")]
        Value TruncatedEncoding { kind: Encoding = Encoding::IdList, size: usize = 3, smallest: usize = 7 },
        #[error("not an igcore {kind}: bad magic byte 0x{byte:02x}")]
        Value BadMagic { kind: Encoding = Encoding::Entries, byte: u8 = 0x49 },
        #[error("unsupported {kind} version {version} (this igcore reads version {supported})")]
        Value UnsupportedVersion {
            kind: Encoding = Encoding::IdList,
            version: u8 = 2,
            supported: u8 = 1,
        },
        #[error("corrupted {kind}: checksum mismatch")]
        Value ChecksumMismatch { kind: Encoding = Encoding::Entries },
        /// The body between the header and the checksum breaks the format at byte `at`.
        #[error("malformed {kind}: {reason} at byte {at}")]
        Value MalformedEncoding {
            kind: Encoding = Encoding::IdList,
            reason: Malformation = Malformation::CountExceedsBytesLeft { count: 9, left: 1 },
            at: usize = 2,
        },
    }
}

error_facts! {
    /// The follow graph: building, changing and querying it, its files, edge-list text.
    pub enum GraphError {
        /// A user id the graph does not hold; the message is the id alone, as `str(KeyError(id))`
        /// reads.
        #[error("{id}")]
        Key UnknownId { id: i64 = 7 },
        #[error("timestamps must be given exactly for a timed graph")]
        Value TimestampsForTimedGraph,
        #[error("too many users for one graph")]
        Value TooManyUsers,
        #[error("line {line}: column {column} is not an integer")]
        Value EdgeListNotAnInteger { line: usize = 3, column: usize = 2 },
        #[error("line {line}: column {column} is outside the int64 range")]
        Value EdgeListOutsideInt64 { line: usize = 1, column: usize = 1 },
        #[error("line {line}: expected 2 or 3 columns, found {found}")]
        Value EdgeListColumns { line: usize = 4, found: usize = 1 },
        /// A line with another number of columns than the first line's (`width`).
        #[error("line {line}: expected {width} columns, found {found}")]
        Value EdgeListWidth { line: usize = 2, width: usize = 3, found: usize = 2 },
        #[error("corrupted: the checksum of section {section} does not match")]
        Value SectionChecksum { section: &'static str = "out_offsets" },
        #[error("corrupted: list offsets are out of order or out of range")]
        Value CorruptOffsets,
        #[error("corrupted: user ids are not strictly ascending")]
        Value CorruptIdsNotAscending,
        #[error("corrupted: the id table does not hold every user once")]
        Value CorruptIdTableNotOnce,
        #[error("corrupted: the id table does not find every user")]
        Value CorruptIdTableMissesUser,
        #[error("corrupted: a follow list is out of range, out of order or holds its own user")]
        Value CorruptFollowList,
        #[error("corrupted: a list's order by time is wrong")]
        Value CorruptTimeOrder,
        #[error("corrupted: followers do not mirror following")]
        Value CorruptNotMirrored,
        #[error("corrupted: a section lies outside the file")]
        Value CorruptSectionOutsideFile,
        #[error("corrupted: a section's length does not fit the graph's size")]
        Value CorruptSectionLength,
        #[error("graph files are little-endian; this machine is not")]
        Value BigEndianMachine,
        /// Reading a graph file failed; `reason` is the operating system's.
        #[error("cannot read the file: {reason}")]
        Value CannotRead { reason: String = "No such file or directory (os error 2)".into() },
        #[error("cannot write {path}: {reason}")]
        Value CannotWrite {
            path: String = "/no/such/dir/graph.igg".into(),
            reason: String = "No such file or directory (os error 2)".into(),
        },
        /// The file now has another header than the one read before (a save renamed a new file
        /// over the path in between); the caller loads again.
        #[error("the file was replaced while it was loaded")]
        Value GraphFileReplaced,
        #[error("not enough memory for the graph")]
        Memory NoMemoryForGraph,
    }
}

error_facts! {
    /// Why bytes are not (yet) a msgpack object.
    pub enum WireError {
        /// The bytes end inside an object (`unpackb` raises it; the streaming Unpacker waits).
        #[error("Unpack failed: incomplete input")]
        Value IncompleteInput,
        /// A byte that starts no msgpack type (only 0xc1).
        #[error("invalid msgpack: byte 0x{byte:02x} at offset {offset} starts no type")]
        Format InvalidByte { byte: u8 = 0xc1, offset: usize = 3 },
        /// More than `levels` ([`MAX_OPEN_CONTAINERS`](crate::msgpack::MAX_OPEN_CONTAINERS))
        /// containers open at once.
        #[error("containers nested deeper than {levels} levels")]
        Stack NestedTooDeep { levels: usize = crate::msgpack::MAX_OPEN_CONTAINERS },
        /// A header above a limit; `limit_name` is the option's name (`max_array_len`, ...).
        #[error("{length} exceeds {limit_name}({limit})")]
        Value LimitExceeded {
            length: u64 = 20,
            limit_name: &'static str = "max_array_len",
            limit: i64 = 10,
        },
    }
}

error_facts! {
    /// Why an ext -1 payload is no timestamp.
    pub enum TimestampError {
        #[error("invalid timestamp data (length {length})")]
        Value InvalidTimestamp { length: usize = 5 },
        #[error("nanoseconds must be a non-negative integer not greater than 999999999.")]
        Value TimestampNanoseconds,
    }
}

/// The one error type of the core: a fact of one hot path.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    #[error(transparent)]
    Common(#[from] CommonError),
    #[error(transparent)]
    Timeline(#[from] TimelineError),
    #[error(transparent)]
    Counters(#[from] CounterError),
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error(transparent)]
    Timestamp(#[from] TimestampError),
}

/// Calls `$call` on the enum inside an [`Error`].
macro_rules! each_family {
    ($error:expr, $inner:ident => $call:expr) => {
        match $error {
            Error::Common($inner) => $call,
            Error::Timeline($inner) => $call,
            Error::Counters($inner) => $call,
            Error::Codec($inner) => $call,
            Error::Graph($inner) => $call,
            Error::Wire($inner) => $call,
            Error::Timestamp($inner) => $call,
        }
    };
}

impl Error {
    /// The Python exception class this error raises.
    pub fn kind(&self) -> ErrorKind {
        each_family!(self, e => e.kind())
    }

    /// The variant's name; its template in `igcore._messages` is this in UPPER_SNAKE case.
    pub fn name(&self) -> &'static str {
        each_family!(self, e => e.name())
    }

    /// The variant's fields by name: the named arguments of its template.
    pub fn facts(&self) -> Vec<(&'static str, Fact)> {
        each_family!(self, e => e.facts())
    }

    /// One example of every variant of every family, facts filled in.
    pub fn examples() -> Vec<Error> {
        let mut all: Vec<Error> = Vec::new();
        all.extend(CommonError::examples().into_iter().map(Error::from));
        all.extend(TimelineError::examples().into_iter().map(Error::from));
        all.extend(CounterError::examples().into_iter().map(Error::from));
        all.extend(CodecError::examples().into_iter().map(Error::from));
        all.extend(GraphError::examples().into_iter().map(Error::from));
        all.extend(WireError::examples().into_iter().map(Error::from));
        all.extend(TimestampError::examples().into_iter().map(Error::from));
        all
    }
}

pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// The variant names of an error's family. No wildcard: a new family must be listed here, and
    /// its examples then must cover every one of its variants.
    fn family_names(error: &Error) -> &'static [&'static str] {
        match error {
            Error::Common(_) => CommonError::NAMES,
            Error::Timeline(_) => TimelineError::NAMES,
            Error::Counters(_) => CounterError::NAMES,
            Error::Codec(_) => CodecError::NAMES,
            Error::Graph(_) => GraphError::NAMES,
            Error::Wire(_) => WireError::NAMES,
            Error::Timestamp(_) => TimestampError::NAMES,
        }
    }

    #[test]
    fn examples_cover_every_variant_once() {
        let examples = Error::examples();
        let mut expected: HashSet<&str> = HashSet::new();
        for example in &examples {
            expected.extend(family_names(example).iter().copied());
        }
        let named: Vec<&str> = examples.iter().map(Error::name).collect();
        let unique: HashSet<&str> = named.iter().copied().collect();
        assert_eq!(
            unique.len(),
            named.len(),
            "a variant name appears twice: {named:?}"
        );
        assert_eq!(unique, expected);
        // Every family has examples (a family with none would be missing from `expected`).
        let families: HashSet<*const [&str]> = examples
            .iter()
            .map(|e| family_names(e) as *const [&str])
            .collect();
        assert_eq!(families.len(), 7);
    }

    #[test]
    fn messages_name_their_facts() {
        let err = Error::from(TimelineError::NotFeedOrder {
            index: 4,
            entry: 1,
            previous: 0,
        });
        assert_eq!(
            err.to_string(),
            "sources[4] is not in feed order: entry 1 ranks above entry 0 \
             (feed order is descending by (score, post_id))"
        );
        assert_eq!(err.kind().python_class(), "ValueError");
        assert_eq!(err.name(), "NotFeedOrder");
        assert_eq!(
            err.facts(),
            vec![
                ("index", Fact::Int(4)),
                ("entry", Fact::Int(1)),
                ("previous", Fact::Int(0))
            ]
        );
        let err = Error::from(CodecError::BadMagic {
            kind: Encoding::IdList,
            byte: 0x0a,
        });
        assert_eq!(
            err.to_string(),
            "not an igcore id list: bad magic byte 0x0a"
        );
        let err = Error::from(GraphError::UnknownId { id: -3 });
        assert_eq!(
            (err.to_string().as_str(), err.kind()),
            ("-3", ErrorKind::Key)
        );
        let err = Error::from(CodecError::MalformedEncoding {
            kind: Encoding::Entries,
            reason: Malformation::AuthorIndexBeyondTable { index: 1, size: 1 },
            at: 8,
        });
        assert_eq!(
            err.to_string(),
            "malformed entries: author index 1 beyond the table of 1 at byte 8"
        );
        assert_eq!(
            err.facts()[1],
            (
                "reason",
                Fact::Text("author index 1 beyond the table of 1".into())
            )
        );
        let err = Error::from(TimelineError::CursorScoreKind {
            cursor_kind: ScoreKind::of(true),
            sources_kind: ScoreKind::of(false),
        });
        assert_eq!(
            err.to_string(),
            "the cursor belongs to a feed with float64 scores; these sources have int64 scores"
        );
    }

    #[test]
    fn every_message_is_one_line_without_stray_braces() {
        for example in Error::examples() {
            let message = example.to_string();
            assert!(
                !message.is_empty() && !message.contains('\n'),
                "{message:?}"
            );
            assert!(
                !message.contains('{') && !message.contains('}'),
                "{message:?}"
            );
            assert!(!message.contains("  "), "{message:?}");
        }
    }
}
