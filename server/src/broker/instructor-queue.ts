/**
 * Declares an instructor's durable queue for a room: quorum type (replicated over the cluster,
 * so it survives a node loss), deleted after a day unused, bound to every key of the room.
 * The arguments must stay identical on every declaration or RabbitMQ refuses the redeclare.
 */
import { ROOM_EXCHANGE, instructorQueueName, roomWildcardKey } from '../../../shared/protocol/routing';
import type { BrokerConnection } from './broker-connection';

export async function ensureInstructorQueue(
  broker: BrokerConnection,
  roomId: string,
  userId: string,
  expiresMs: number,
): Promise<string> {
  const name = instructorQueueName(roomId, userId);
  await broker.withChannel(async (ch) => {
    await ch.assertQueue(name, {
      durable: true,
      autoDelete: false,
      exclusive: false,
      arguments: { 'x-queue-type': 'quorum', 'x-expires': expiresMs },
    });
    await ch.bindQueue(name, ROOM_EXCHANGE, roomWildcardKey(roomId));
  });
  return name;
}

/** Deletes an instructor's queue of a room (its membership ended); a missing queue is no error. */
export async function deleteInstructorQueue(broker: BrokerConnection, roomId: string, userId: string): Promise<void> {
  await broker.withChannel(async (ch) => {
    await ch.deleteQueue(instructorQueueName(roomId, userId));
  });
}
