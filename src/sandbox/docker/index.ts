export { createDockerProvider, DockerProvider, type DockerProviderOptions } from './docker-provider.ts';
export { DockerSandbox } from './docker-sandbox.ts';
