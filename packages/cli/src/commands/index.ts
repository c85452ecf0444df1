import type { CommandRegistrar } from '../context';
import { registerData } from './data';
import { registerEval } from './eval';
import { registerInit } from './init';
import { registerList } from './list';
import { registerReport } from './report';
import { registerSchema } from './schema';
import { registerTrain } from './train';
import { registerValidate } from './validate';
import { registerWorker } from './worker';

/**
 * Every `l2l` command, in the order `l2l --help` lists them. A new command is one file in this folder that
 * exports a `CommandRegistrar` (see list.ts), plus one line here.
 */
export const commands: readonly CommandRegistrar[] = [registerList, registerValidate, registerSchema, registerTrain, registerEval, registerReport, registerData, registerInit, registerWorker];
