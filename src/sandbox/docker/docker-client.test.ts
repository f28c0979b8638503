import { describe, expect, it } from 'vitest';
import { dockerOptions } from './docker-client.ts';

describe('dockerOptions', () => {
  it('reads DOCKER_HOST the way the docker CLI does', () => {
    expect(dockerOptions(undefined)).toEqual({ socketPath: '/var/run/docker.sock' });
    expect(dockerOptions('unix:///run/user/1000/docker.sock')).toEqual({ socketPath: '/run/user/1000/docker.sock' });
    expect(dockerOptions('tcp://10.0.0.5:2375')).toEqual({ host: '10.0.0.5', port: 2375, protocol: 'http' });
    expect(dockerOptions('https://docker.internal')).toEqual({ host: 'docker.internal', port: 2376, protocol: 'https' });
    expect(() => dockerOptions('ssh://user@host')).toThrow(/unsupported DOCKER_HOST/);
  });
});
