/** A redis-server of a test file's own, for the tests that read what rtpengine wrote to Redis. */
import { RedisClient } from '../../src/stack/redis-client.js';
import { startRedis, type LocalRedis } from '../../src/stack/redis.js';

export interface TestRedis {
  redis: LocalRedis;
  client: RedisClient;
  /** Closes the client and stops the server. */
  stop(): Promise<void>;
}

/** A redis-server on 127.0.0.1 (16 DBs) and a client to it. */
export async function startTestRedis(): Promise<TestRedis> {
  const redis = await startRedis({ address: '127.0.0.1', databases: 16 });
  const client = await RedisClient.connect({ host: redis.address, port: redis.port });
  return {
    redis,
    client,
    stop: async () => {
      await client.close();
      await redis.stop();
    },
  };
}
