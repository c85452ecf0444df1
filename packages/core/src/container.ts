import 'reflect-metadata';
import { Container, ContainerModule } from 'inversify';
import { ComponentContribution } from './registry/component';
import { ComponentRegistry } from './registry/registry';
import { coreComponents } from './pipeline/core-components';

/** Core's wiring: its own components (the built-in estimators) and the registry, filled from every loaded package's `ComponentContribution`. */
export const coreModule = new ContainerModule(({ bind }) => {
  bind<ComponentContribution>(ComponentContribution).toConstantValue(coreComponents);
  bind(ComponentRegistry)
    .toDynamicValue((ctx) => new ComponentRegistry(ctx.getAll<ComponentContribution>(ComponentContribution, { optional: true })))
    .inSingletonScope();
});

/** A container with core and the given packages' modules loaded (`createContainer(optimizeesModule, ...)`). */
export function createContainer(...modules: ContainerModule[]): Container {
  const container = new Container();
  container.loadSync(coreModule, ...modules);
  return container;
}

/** A module that contributes components: what each package's wiring file and `definePlugin` build. */
export function componentsModule(contribution: ComponentContribution): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind<ComponentContribution>(ComponentContribution).toConstantValue(contribution);
  });
}
