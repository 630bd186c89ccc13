export * from './errors';
export * from './messages';
export * from './routing';
export * from './presence';
export * from './rooms';
export * from './events';
export * from './operations';
export * from './webhooks';
