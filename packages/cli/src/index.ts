export { main, createProgram, EXIT_OK, EXIT_USER_ERROR, EXIT_USAGE, EXIT_INTERNAL } from './main';
export { createContext, type CliContext, type CliIo, type CommandRegistrar, type MainOptions } from './context';
export { commands } from './commands';
export {
  builtinModules,
  createWorkspace,
  loadExperiment,
  openExperiment,
  type ExperimentWorkspace,
  type LoadedExperiment,
  type OpenOptions,
  type Workspace,
  type WorkspaceOptions,
} from './workspace';
