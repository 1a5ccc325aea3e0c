//! Workflows: definitions (who acts, in what order, with which signature) and the pure state
//! machine that turns case events into open steps and their assignees.
//!
//! Nothing here does I/O or reads a clock: time, the directory and the definitions are inputs,
//! so every route can be tested exhaustively without a server or a store.

pub mod definition;

pub use definition::{
    Action, Assignee, CheckInputs, CompleteWhen, ConflictOfInterest, DayCount, Deadline, FormOutline, Level, Member, Seats, SelfApproval, StepDefinition,
    WorkflowDefinition,
};
pub mod engine;
pub mod replay;

pub use engine::{
    ActRequest, Assignment, Case, CaseEvent, CaseStatus, Change, DefinitionRef, Engine, Party, Seat, SignatureRecord, StepStatus, WorkflowError, conflict,
    parties_of,
};
