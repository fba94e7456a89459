import { amqpScope, describeAmqp } from './amqp-helpers';
import { transportContract } from './contract';

describeAmqp('amqp-bus')('the transport contract on RabbitMQ', () => {
  transportContract(() => {
    const scope = amqpScope();
    return { transport: () => scope.transport(), cleanup: (apps) => scope.cleanup(apps), unserved: 'ERR_BUS_UNKNOWN_APP', slowMs: 500 };
  });
});
