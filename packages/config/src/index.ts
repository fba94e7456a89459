export type { Catalogue } from './catalogue';
export { catalogue } from './catalogue';
export type {
  CatalogueExtension,
  CatalogueShape,
  EventInput,
  EventName,
  EventPayload,
  EventsOf,
  ExtendedCatalogue,
  TaskDef,
  TaskName,
  TaskPayload,
  TaskReply,
} from './catalogue-shape';
export { defineCatalogue, extendCatalogue, isTaskName, publisherOf, taskApp } from './catalogue-shape';
export type { ChainOpName, OtherOpName } from './chain-ops';
export { chainOpMeta, chainOpNames, commonOps } from './chain-ops';
export type { VariableCheck, VariableDefs, VariableValues } from './check-variables';
export { checkVariables, configError } from './check-variables';
export type { EmailRequest, EmailStatus, ParsedEmailRequest } from './email';
export { allowedHeaderNames, emailAddress, emailRequest, emailStatuses, MAX_METADATA_BYTES, MAX_SCHEDULE_MS } from './email';
export type { ErrorCode, SerializedError } from './errors';
export { AppError, deserializeError, errorCodes, serializeError } from './errors';
export type { ConfigProblem, LoadOptions } from './load';
export { loadConfig, loadConfigOrExit, readEnvironment } from './load';
export type { Logger, LoggerOptions } from './logger';
export { createLogger } from './logger';
export { projectRoot, resolveProjectPath } from './paths';
export { APPLIED_INDEX, appliedPosition, blockOfPosition, indexOfPosition, positionOf, POSITIONS_PER_BLOCK } from './position';
export { isSecretName, maskUrlCredentials, REDACTED, redactSecrets } from './redact';
export { checkPrivateDir } from './secure-dir';
export type { ActionState } from './signer-actions';
export { actionStates, commentAction, customJsonAction, transferAction, voteAction } from './signer-actions';
export { currentTid, newTid, withTid } from './tid';
export type { Config, Section, VariableDef, VariableName } from './variables';
export { sections, variable, variables, variableSchemas } from './variables';
