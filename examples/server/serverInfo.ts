export const SERVER_NAME = 'paygate-example';
export const SERVER_VERSION = '1.0.0';
